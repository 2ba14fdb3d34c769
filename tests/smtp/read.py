"""Reads a maildir with Python's own email parser and prints the messages as JSON lines: every header decoded
(RFC 2047 words included), the text and HTML parts decoded to text, and the multipart layout."""
import json
import mailbox
import sys
from email import policy
from email.parser import BytesParser


def delivery_order(key):
    """Maildir names are `<seconds>.M<microseconds>P<pid>Q<count>.<host>`; sorted as text, M99 comes after M100.
    The one server process numbers its deliveries with Q, so Q is the order they arrived in."""
    unique = key.split(".")[1]
    return int(unique[unique.index("Q") + 1:])


def main():
    box = mailbox.Maildir(sys.argv[1], create=False)
    for key in sorted(box.keys(), key=delivery_order):
        with box.get_file(key) as f:
            message = BytesParser(policy=policy.default).parse(f)
        out = {
            "headers": {name: str(value) for name, value in message.items()},
            "content_type": message.get_content_type(),
            "text": None,
            "html": None,
        }
        for part in message.walk():
            if part.is_multipart():
                continue
            kind = part.get_content_type()
            if kind == "text/plain":
                out["text"] = part.get_content()
            elif kind == "text/html":
                out["html"] = part.get_content()
        print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
