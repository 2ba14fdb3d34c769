//! Panics reported through the log, as everything else is: the default hook prints a panic's message to
//! stderr, and a message may quote the data that caused it (a template's value, a vendor's answer). Here the
//! thread and the source location go out at ERROR and the message only at DEBUG, the level that may carry
//! personal data. What happens after a panic is unchanged: where the engine catches it (one input, one run),
//! it goes on; elsewhere the thread ends as before.

/// Installs the hook. Call once, after the log is set up.
pub fn report_through_the_log() {
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let thread = thread.name().unwrap_or("unnamed");
        let location = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        tracing::error!(thread, location, "a panic (its message is logged at DEBUG)");
        let message = tutti_core::budget::panic_text(info.payload());
        tracing::debug!(thread, location, message, "the panic's message");
    }));
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn log_of_a_panic(level: tracing::Level) -> String {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(level)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            super::report_through_the_log();
            let caught = std::panic::catch_unwind(|| panic!("cannot render for lan@example.vn"));
            let _ = std::panic::take_hook();
            assert!(caught.is_err());
        });
        String::from_utf8(captured.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn a_panic_is_logged_with_where_it_happened_and_its_message_only_at_debug() {
        let info = log_of_a_panic(tracing::Level::INFO);
        assert!(info.contains("ERROR") && info.contains("a panic") && info.contains("panics.rs"), "{info}");
        assert!(!info.contains("lan@example.vn"), "the message reached the log above DEBUG: {info}");
        let debug = log_of_a_panic(tracing::Level::DEBUG);
        assert!(debug.contains("lan@example.vn"), "{debug}");
    }
}
