//! Unit tests of the flag table: defaults, values both ways, minimums,
//! the checks across flags, and that every flag has its default, its
//! `GOTALK_*` variable and its help.

use super::*;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Resolves `localhost` only, as the system would, without asking it.
fn fake_resolve(text: &str) -> io::Result<Vec<SocketAddr>> {
    match text.rsplit_once(':') {
        Some(("localhost", port)) => Ok(vec![SocketAddr::from((
            [127, 0, 0, 1],
            port.parse().unwrap(),
        ))]),
        _ => Err(io::Error::new(io::ErrorKind::NotFound, "unknown name")),
    }
}

fn parse(args: &[&str]) -> Result<Invocation, String> {
    let all = std::iter::once("gotalk").chain(args.iter().copied());
    parse_args(all).map_err(|e| e.to_string())
}

fn run(args: &[&str]) -> Result<Config, String> {
    match parse(args)? {
        Invocation::Run(flags) => flags
            .into_config(Purpose::Server, &fake_resolve)
            .map_err(|e| e.to_string()),
        other => panic!("expected a run, got {other:?}"),
    }
}

#[test]
fn defaults_follow_the_contract() {
    let c = run(&[]).unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:9000");
    assert_eq!(c.data_dir, PathBuf::from("./gotalk-data"));
    assert!(!c.memory);
    assert_eq!(c.max_line, 65536);
}

#[test]
fn flags_take_values_both_ways() {
    let c = run(&["--listen", "127.0.0.1:0", "--memory", "--max-line=1024"]).unwrap();
    assert_eq!(c.listen.port(), 0);
    assert!(c.memory);
    assert_eq!(c.max_line, 1024);
}

#[test]
fn unknown_and_malformed_flags_are_errors() {
    assert!(run(&["--bogus"]).unwrap_err().contains("'--bogus'"));
    assert!(run(&["--listen", "nowhere"])
        .unwrap_err()
        .contains("--listen"));
    assert!(run(&["--data"])
        .unwrap_err()
        .contains("a value is required for '--data <DIR>'"));
    assert!(run(&["--hash-threads", "0"]).is_err());
}

#[test]
fn budget_flags_have_defaults_and_take_values() {
    let c = run(&[]).unwrap();
    assert_eq!(c.mailbox_bytes, 16 << 20);
    assert_eq!(c.pending_bytes, 512 << 20);
    assert_eq!(c.client_ids_per_sender, 10_000);
    assert_eq!(c.waiters_per_user, 16);
    assert_eq!(c.conns_per_user, 16);
    let c = run(&[
        "--mailbox-bytes",
        "4096",
        "--pending-bytes=65536",
        "--client-ids-per-sender",
        "100",
        "--waiters-per-user",
        "2",
        "--conns-per-user=3",
    ])
    .unwrap();
    assert_eq!(c.mailbox_bytes, 4096);
    assert_eq!(c.pending_bytes, 65536);
    assert_eq!(c.client_ids_per_sender, 100);
    assert_eq!(c.waiters_per_user, 2);
    assert_eq!(c.conns_per_user, 3);
    assert!(run(&["--mailbox-bytes", "100"]).is_err());
    assert!(run(&["--pending-bytes", "x"]).is_err());
    assert!(run(&["--client-ids-per-sender", "0"]).is_err());
    assert!(run(&["--waiters-per-user", "0"]).is_err());
    assert!(run(&["--conns-per-user", "0"]).is_err());
}

#[test]
fn names_resolve_and_memory_excludes_data() {
    let c = run(&["--listen", "localhost:9000"]).unwrap();
    assert!(c.listen.ip().is_loopback());
    assert_eq!(c.listen.port(), 9000);
    assert!(run(&["--listen", "localhost"]).is_err());
    let unknown = run(&["--listen", "nowhere.invalid:9000"]).unwrap_err();
    assert!(
        unknown.contains("--listen: cannot resolve 'nowhere.invalid'"),
        "{unknown}"
    );
    let both = run(&["--memory", "--data", "x"]).unwrap_err();
    assert!(both.contains("--memory"), "{both}");
    assert!(run(&["--log-format", "xml"]).is_err());
}

#[test]
fn postgres_takes_a_url_and_excludes_memory() {
    let url = "postgres://gotalk@127.0.0.1:5432/gotalk";
    let c = run(&["--postgres", url]).unwrap();
    assert_eq!(c.postgres.as_deref(), Some(url));
    let both = run(&["--memory", "--postgres", url]).unwrap_err();
    assert!(both.contains("--postgres"), "{both}");
    assert!(run(&["--postgres"]).is_err());
}

#[test]
fn node_id_needs_postgres_and_a_channel_safe_name() {
    let url = "postgres://gotalk@127.0.0.1:5432/gotalk";
    let c = run(&["--postgres", url, "--node-id", "node-a_1"]).unwrap();
    assert_eq!(c.node_id.as_deref(), Some("node-a_1"));
    assert!(run(&["--node-id", "a"]).unwrap_err().contains("--postgres"));
    // The name's form is the store's rule, checked in main.rs.
}

#[test]
fn password_queue_flags_have_defaults_and_a_minimum() {
    let c = run(&[]).unwrap();
    assert_eq!((c.hash_queue, c.hash_queue_per_address), (1024, 16));
    let c = run(&["--hash-queue", "10", "--hash-queue-per-address=2"]).unwrap();
    assert_eq!((c.hash_queue, c.hash_queue_per_address), (10, 2));
    assert!(run(&["--hash-queue", "0"]).is_err());
    assert!(run(&["--hash-queue-per-address", "x"]).is_err());
}

#[test]
fn throttle_flags_have_defaults_and_a_minimum() {
    let c = run(&[]).unwrap();
    assert_eq!(
        (
            c.login_failures_per_minute,
            c.login_failure_burst,
            c.login_failures_per_address_minute,
            c.registers_per_address_hour,
            c.throttle_entries
        ),
        (10, 5, 30, 20, 100_000)
    );
    let c = run(&[
        "--login-failures-per-minute=60",
        "--login-failure-burst",
        "2",
        "--login-failures-per-address-minute",
        "7",
        "--registers-per-address-hour",
        "1000",
        "--throttle-entries=64",
    ])
    .unwrap();
    assert_eq!(c.login_failures_per_minute, 60);
    assert_eq!(c.login_failure_burst, 2);
    assert_eq!(c.login_failures_per_address_minute, 7);
    assert_eq!(c.registers_per_address_hour, 1000);
    assert_eq!(c.throttle_entries, 64);
    assert!(run(&["--registers-per-address-hour", "0"]).is_err());
    assert!(run(&["--login-failures-per-minute", "x"]).is_err());
    assert!(run(&["--throttle-entries", "3"]).is_err());
}

#[test]
fn lookup_and_new_address_rates_have_defaults_and_a_minimum() {
    let c = run(&[]).unwrap();
    assert_eq!(
        (
            c.lookups_per_address_minute,
            c.login_tries_per_new_address_hour
        ),
        (60, 3)
    );
    let c = run(&[
        "--lookups-per-address-minute=5",
        "--login-tries-per-new-address-hour",
        "9",
    ])
    .unwrap();
    assert_eq!(
        (
            c.lookups_per_address_minute,
            c.login_tries_per_new_address_hour
        ),
        (5, 9)
    );
    assert!(run(&["--lookups-per-address-minute", "0"]).is_err());
    assert!(run(&["--login-tries-per-new-address-hour", "x"]).is_err());
    let c = run(&["--login-tries-per-new-address-hour", "0"]).unwrap();
    assert_eq!(c.login_tries_per_new_address_hour, 0);
}

#[test]
fn revocation_and_login_flags_have_defaults_and_a_minimum() {
    let c = run(&[]).unwrap();
    assert_eq!(
        (c.revocations_per_account, c.logins_per_account_minute),
        (100, 30)
    );
    let c = run(&[
        "--revocations-per-account",
        "3",
        "--logins-per-account-minute=1000",
    ])
    .unwrap();
    assert_eq!(
        (c.revocations_per_account, c.logins_per_account_minute),
        (3, 1000)
    );
    assert!(run(&["--revocations-per-account", "0"]).is_err());
    assert!(run(&["--logins-per-account-minute", "0"]).is_err());
    assert!(help_text().contains("--revocations-per-account <N>"));
    assert!(help_text().contains("--logins-per-account-minute <N>"));
}

#[test]
fn disk_reserve_defaults_to_8_mib_and_may_be_0() {
    assert_eq!(run(&[]).unwrap().disk_reserve, 8 << 20);
    assert_eq!(run(&["--disk-reserve", "0"]).unwrap().disk_reserve, 0);
    assert!(run(&["--disk-reserve", "-1"]).is_err());
}

#[test]
fn http_hosts_are_repeatable_and_checked() {
    let c = run(&["--http-host", "Chat.Example.com.", "--http-host=other"]).unwrap();
    assert_eq!(c.http_hosts, ["chat.example.com", "other"]);
    for bad in ["", "a:80", "http://a", "a..b", "a b"] {
        assert!(run(&["--http-host", bad]).is_err(), "{bad:?} accepted");
    }
}

#[test]
fn rotate_key_takes_the_key_file_flags() {
    let rotate = |args: &[&str]| match parse(args)? {
        Invocation::RotateKey(flags) => flags
            .into_config(Purpose::RotateKey, &fake_resolve)
            .map_err(|e| e.to_string()),
        other => panic!("{other:?}"),
    };
    let c = rotate(&["rotate-key", "--data", "d", "--token-ttl", "60"]).unwrap();
    assert_eq!(c.data_dir, PathBuf::from("d"));
    assert_eq!(c.token_ttl, Duration::from_secs(60));
    assert!(rotate(&["rotate-key", "--memory"]).is_err());
    assert!(parse(&["--data", "d", "rotate-key"]).is_err());
}

#[test]
fn proxy_and_handshake_flags_parse_and_check() {
    let c = run(&[
        "--trusted-proxies",
        "10.0.0.0/8,127.0.0.1",
        "--proxy-protocol",
    ])
    .unwrap();
    assert_eq!(c.trusted_proxies.len(), 2);
    assert!(c.trusted_proxies[1].contains("127.0.0.1".parse().unwrap()));
    assert!(c.proxy_protocol);
    assert!(run(&["--trusted-proxies", "10.0.0.0/40"])
        .unwrap_err()
        .contains("--trusted-proxies"));
    assert!(run(&["--proxy-protocol"])
        .unwrap_err()
        .contains("--trusted-proxies"));
    let d = run(&[]).unwrap();
    assert!(d.trusted_proxies.is_empty() && !d.proxy_protocol);
    assert_eq!(
        (d.tls_handshakes_per_address_second, d.tls_handshake_burst),
        (20, 40)
    );
    let c = run(&["--tls-handshakes-per-address-second", "0"]).unwrap();
    assert_eq!(c.tls_handshakes_per_address_second, 0);
    assert!(run(&["--tls-handshake-burst", "0"]).is_err());
    let help = help_text();
    assert!(help.contains("--trusted-proxies") && help.contains("(default 20)"));
}

#[test]
fn tls_flags_go_together_and_public_addresses_need_tls() {
    let c = run(&["--tls-cert", "c.pem", "--tls-key=k.pem"]).unwrap();
    assert_eq!(c.tls_cert, Some(PathBuf::from("c.pem")));
    assert_eq!(c.tls_handshake_timeout, Duration::from_secs(10));
    assert!(run(&["--tls-cert", "c.pem"])
        .unwrap_err()
        .contains("--tls-key"));
    assert!(run(&["--tls-key", "k.pem"])
        .unwrap_err()
        .contains("--tls-cert"));
    let public = run(&["--listen", "0.0.0.0:9000"]).unwrap_err();
    assert!(public.contains("gotalk gen-cert"), "{public}");
    assert!(public.contains("--allow-plaintext"), "{public}");
    run(&["--listen", "0.0.0.0:9000", "--allow-plaintext"]).unwrap();
    run(&["--listen", "[::]:9000", "--tls-cert", "c", "--tls-key", "k"]).unwrap();
    run(&["--listen", "[::1]:9000"]).unwrap();
}

#[test]
fn gen_cert_takes_hosts_a_directory_and_force() {
    let args = |a: &[&str]| parse(a);
    let Ok(Invocation::GenCert(g)) = args(&["gen-cert"]) else {
        panic!("not gen-cert")
    };
    assert_eq!(g.hosts, ["localhost", "127.0.0.1", "::1"]);
    assert_eq!(g.dir, PathBuf::from("./gotalk-data"));
    assert!(!g.force);
    let parsed = args(&[
        "gen-cert",
        "--host",
        "chat.example",
        "10.0.0.5",
        "--data",
        "d",
        "--host",
        "x",
        "--force",
    ]);
    let Ok(Invocation::GenCert(g)) = parsed else {
        panic!("not gen-cert")
    };
    assert_eq!(g.hosts, ["chat.example", "10.0.0.5", "x"]);
    assert_eq!(g.dir, PathBuf::from("d"));
    assert!(g.force);
    assert!(args(&["gen-cert", "--host"]).is_err());
    assert!(args(&["gen-cert", "--bogus"]).is_err());
    let help = command()
        .try_get_matches_from(["gotalk", "gen-cert", "--help"])
        .unwrap_err();
    assert_eq!(help.kind(), clap::error::ErrorKind::DisplayHelp);
    assert!(help.to_string().contains("--force"));
}

#[test]
fn help_lists_every_flag() {
    let help = help_text();
    for flag in [
        "--listen",
        "--http-host",
        "--data",
        "--memory",
        "--key-file",
        "--hash-queue",
        "--hash-queue-per-address",
        "--disk-reserve",
        "--log-level",
        "--mailbox-limit",
        "--mailbox-bytes",
        "--pending-bytes",
        "--client-ids-per-sender",
        "--account-cache",
        "--mailbox-window",
        "--mailbox-window-bytes",
        "--waiters-per-user",
        "--conns-per-user",
        "--metrics",
        "--max-connections-per-address",
        "--max-output-total",
        "--login-timeout",
        "--request-timeout",
        "--http-idle-timeout",
        "--shutdown-timeout",
        "--log-format",
        "--login-failures-per-minute",
        "--login-failure-burst",
        "--login-failures-per-address-minute",
        "--registers-per-address-hour",
        "--throttle-entries",
        "--lookups-per-address-minute",
        "--login-tries-per-new-address-hour",
        "--tls-cert",
        "--tls-key",
        "--tls-handshake-timeout",
        "--allow-plaintext",
        "gen-cert",
    ] {
        assert!(help.contains(flag), "{flag} missing from help");
    }
}

#[test]
fn sender_budget_and_message_ttl_have_defaults_and_take_values() {
    let d = run(&[]).unwrap();
    assert_eq!(d.pending_bytes_per_sender, 8 << 20);
    assert!(d.pending_bytes_per_sender < d.pending_bytes / 32);
    assert_eq!(d.message_ttl, None);
    let c = run(&[
        "--pending-bytes-per-sender",
        "4096",
        "--message-ttl",
        "3600",
    ])
    .unwrap();
    assert_eq!(c.pending_bytes_per_sender, 4096);
    assert_eq!(c.message_ttl, Some(Duration::from_secs(3600)));
    assert!(run(&["--pending-bytes-per-sender", "10"]).is_err());
    assert!(run(&["--message-ttl", "0"]).is_err());
    let help = help_text();
    assert!(help.contains("--pending-bytes-per-sender <BYTES>"));
    assert!(help.contains("--message-ttl <SECONDS>"));
    // A lowered pool lowers the default with it, never below one
    // largest message.
    let small = run(&["--pending-bytes", "4194304"]).unwrap();
    assert_eq!(small.pending_bytes_per_sender, 4194304 / 64 * 2);
    let given = run(&[
        "--pending-bytes",
        "4194304",
        "--pending-bytes-per-sender",
        "2048",
    ]);
    assert_eq!(given.unwrap().pending_bytes_per_sender, 2048);
}

/// The flags of `command`, less clap's own `--help` and `--version`.
fn table(command: &clap::Command) -> Vec<&clap::Arg> {
    command
        .get_arguments()
        .filter(|a| !matches!(a.get_id().as_str(), "help" | "version"))
        .collect()
}

#[test]
fn every_flag_has_a_variable_a_default_and_help() {
    let mut command = command();
    command.build();
    let server = table(&command);
    assert!(server.len() >= 50, "{} flags", server.len());
    for arg in &server {
        let long = arg.get_long().expect("every setting is a --flag");
        let variable = format!("GOTALK_{}", long.to_uppercase().replace('-', "_"));
        let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
        assert_eq!(env.as_deref(), Some(variable.as_str()), "--{long}");
        let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
        assert!(help.len() > 20, "--{long} has no help: {help:?}");
        assert!(
            help.contains("(default"),
            "--{long} names no default: {help}"
        );
        assert!(
            arg.is_hide_env_values_set(),
            "--{long} shows its variable's value"
        );
    }
    // rotate-key reads the same table.
    let rotate = command
        .find_subcommand("rotate-key")
        .expect("rotate-key is a subcommand");
    let longs = |args: &[&clap::Arg]| -> Vec<String> {
        args.iter()
            .filter_map(|a| a.get_long())
            .map(String::from)
            .collect()
    };
    assert_eq!(longs(&table(rotate)), longs(&server));
    let text = help_text();
    for arg in &server {
        let long = arg.get_long().unwrap();
        assert!(
            text.contains(&format!("--{long}")),
            "--{long} missing from help"
        );
    }
}

#[test]
fn help_shows_defaults_and_variables_grouped_by_concern() {
    let help = help_text();
    for heading in [
        "Network:",
        "Storage and tokens:",
        "Budgets:",
        "Passwords and throttles:",
        "Timeouts:",
        "TLS:",
        "Logging:",
    ] {
        assert!(help.contains(heading), "{heading} missing");
    }
    assert!(help.contains("(default 127.0.0.1:9000)"), "{help}");
    assert!(help.contains("[env: GOTALK_POSTGRES]"), "{help}");
    assert!(!help.contains("[default:"), "clap's own default shown too");
}

#[test]
fn config_default_is_the_table_default() {
    let parsed = run(&[]).unwrap();
    let d = Config::default();
    assert_eq!(format!("{d:?}"), format!("{parsed:?}"));
    assert_eq!(d.disk_reserve, DEFAULT_DISK_RESERVE);
    assert_eq!(d.token_ttl, Duration::from_secs(7 * 24 * 3600));
    assert_eq!(d.max_connections, 0);
}

#[test]
fn a_misspelt_flag_is_a_usage_error_with_a_suggestion() {
    let err = command()
        .try_get_matches_from(["gotalk", "--mailbox-byte", "4096"])
        .unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().contains("--mailbox-bytes"), "{err}");
}

#[test]
fn a_flag_given_twice_takes_its_last_value_and_lists_collect() {
    let c = run(&[
        "--memory",
        "--memory",
        "--max-line",
        "100",
        "--max-line=200",
        "--trusted-proxies",
        "10.0.0.0/8,",
        "--trusted-proxies=127.0.0.1",
    ])
    .unwrap();
    assert!(c.memory);
    assert_eq!(c.max_line, 200);
    assert_eq!(c.trusted_proxies.len(), 2);
    let rotate = parse(&["rotate-key", "--token-ttl", "5", "--token-ttl", "6"]);
    assert!(rotate.is_ok(), "{rotate:?}");
}
