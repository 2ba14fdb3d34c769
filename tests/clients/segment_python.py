"""Drives Tutti with an official client library, unchanged except for its host option.

usage: segment_python.py segment|rudder WRITE_KEY HOST PREFIX
"""
import sys

library, write_key, host, prefix = sys.argv[1:5]
if library == "segment":
    import segment.analytics as analytics

    analytics.host = host
    analytics.gzip = False
elif library == "rudder":
    import rudderstack.analytics as analytics

    analytics.dataPlaneUrl = host  # RudderStack gzips batches by default
else:
    sys.exit(f"unknown library {library}")

errors = []
analytics.write_key = write_key
analytics.sync_mode = True
analytics.max_retries = 1
analytics.on_error = lambda error, batch: errors.append(error)

anon, user = f"{prefix}-anon", f"{prefix}-user"
analytics.page(anonymous_id=anon, name="Pricing", properties={"path": "/pricing"})
analytics.track(anonymous_id=anon, event="Product Viewed", properties={"name": "Phở bò 牛肉粉"})
analytics.identify(user_id=user, anonymous_id=anon, traits={"email": f"{prefix}@Example.vn", "name": "Trần Văn An"})
analytics.group(user_id=user, group_id=f"{prefix}-acme", traits={"name": "Công ty 越南"})
analytics.alias(previous_id=f"{prefix}-anon2", user_id=user)
analytics.track(user_id=user, event="Order Completed", properties={"revenue": 120000, "currency": "VND"})
analytics.flush()
if errors:
    sys.exit(f"client reported errors: {errors}")
print("ok")
