//! The `profiles` scenario: a million people identified, then the server's resident memory.

use std::time::Instant;

use crate::load::client::send_numbered;
use crate::load::server::{Server, metric, rss_kib, wait_until_processed};

pub(crate) async fn profiles(server: &Server, total: u64, connections: usize) -> anyhow::Result<()> {
    let started = Instant::now();
    send_numbered(&server.addr, total, connections, |i| {
        format!(
            r#"{{"type":"identify","userId":"person-{i}","anonymousId":"cookie-{i}","traits":{{"email":"person{i}@example.vn","name":"Khách hàng {i}","plan":"free"}}}}"#
        )
    })
    .await?;
    let sent = started.elapsed().as_secs_f64();
    // Every client task has finished, so blocking this runtime thread while polling delays nothing.
    wait_until_processed(&server.addr)?;
    let profiles = metric(&server.addr, "tutti_profiles")?;
    let pid = server.child.id();
    println!("## profiles: {total} people identified (user id, anonymous id, email, traits)");
    println!("accepted in {sent:.1} s; all folded into profiles after {:.1} s", started.elapsed().as_secs_f64());
    println!("profiles: {profiles:.0}");
    println!(
        "server memory: resident {} MiB now, peak resident {} MiB\n",
        rss_kib(pid, "VmRSS:")? / 1024,
        rss_kib(pid, "VmHWM:")? / 1024
    );
    Ok(())
}
