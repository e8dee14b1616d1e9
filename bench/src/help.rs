//! `gotalk-bench --help`: every scenario and flag, in one text.

pub const HELP: &str = "gotalk-bench: load generator for the goTalk server

Usage: gotalk-bench <SCENARIO> [FLAGS]

Scenarios (each starts its own server on 127.0.0.1, stops by itself and
kills the server at the end):
  relay     S senders pipeline JSON SENDs (a window in flight each) to R
            logged-in receivers that count pushes and ACK every 1000;
            --memory. Reports relayed messages/s, sends/s and CPU.
            With --ws, also the open-loop latency (below) on each door.
  durable   SENDs with 1, 16 and 64 senders that each wait for the reply
            before the next; the durable store (--data in a temp dir) and
            --memory side by side, with commits/s from the server's
            `store stats:` log lines (group commit).
  idle      opens N idle connections (half of them AUTHed users, half after
            one PING) and reports the server's RSS per connection. With
            --tls: N connections (default 2000) that each finish a TLS
            handshake and one PING, not logged in, side by side with plain
            ones of the same shape. With --users N: N users online, one
            idle connection each, and the server's RSS per online user.
  login     registers N users (default 32, --conns N), times one LOGIN
            alone, then N LOGINs at once (a thread and connection each)
            while another connection PINGs every 2 ms; reports LOGIN
            times, PING latency (p50/p99/max) and server RSS after:
            argon2 runs on worker threads and must not stall the loop.
  hotpath   no sockets, no server process: SEND lines through the real
            parser, core and renderer in-process (4 senders, 4 receivers,
            a commit every 512, ACK every 1000); --max-messages sets the
            count (default 2000000). The core is set up as `relay`'s
            server: --memory with history in RAM, and the send and
            fan-out rates on but far above the load (so their checks
            run); --no-history and --no-shares turn each off.
            Deterministic under `valgrind --tool=callgrind`, to compare
            builds (or the four settings) by instructions.
  chaos     4 senders (one SEND at a time, each with a client_id, retried
            after a broken connection) and 3 receivers (SYNC, ACK) against
            a durable server killed at random moments (SIGKILL, one time
            in four SIGTERM) and restarted on the same data; --seconds
            (default 120). Checks that every acknowledged SEND is
            delivered, none again after its ACK, each sender's order
            kept and retried SENDs stored once; exits 1 if not.
  backlog   RSS of an empty server and with 100,000 accounts at rest;
            then --max-messages (default 1000000) messages of 100 bytes
            queued for --conns (default 10000) offline users: rate and
            RSS; a kill -9 and restart: time to the first PING and SYNC,
            RSS; the drain with SYNC/ACK on 8 connections: messages/s,
            RSS. Fails if the drain does not return every message once.
  cluster   two nodes on one PostgreSQL (--postgres URL, emptied):
            the relay load with senders on node A and receivers on node
            B (relayed messages/s; A's commits/s and writes per commit),
            then the open-loop latency (below) with the sender on A at
            --rate (default 5000) messages/s and the receiver on B.
  history   a durable server (SQLite, or --postgres URL) filled with
            --max-messages (default 1000000) messages in --conns (default
            10000) conversations among 1001 users, one of them with 1000
            partners; nothing acknowledged. Reports the fill rate, HISTORY
            page (50) p50/p99 (newest, and from a random point back),
            CONVERSATIONS p50/p99 for the user with 1000 partners, and
            store bytes per message, then the same fill with --no-history
            for its bytes per message. --server-arg passes flags on.
  compare   goTalk against the servers a user might pick instead, in one
            run, in issue 22's shape: 32 sender -> receiver pairs (--senders,
            --receivers), 100-byte messages, window 64 (--window):
            1. relay: gotalk --memory, redis-server (PUBLISH to SUBSCRIBEd
               receivers) and nats-server (PUB to SUBscribed receivers, a
               PING per quarter window whose PONG answers it);
            2. durable relay: gotalk with SQLite (--data in a temp dir)
               against redis-server --appendonly yes --appendfsync always.
               Redis is driven durably: XADD to one stream per receiver
               (its reply, sent after the fsync, is the window, as goTalk's
               SEND reply is sent after the commit), each receiver a
               consumer group reading XREADGROUP COUNT 1000 BLOCK 0 NOACK.
               Why that peer: like goTalk it keeps each message on disk
               until read and keeps each receiver's place on the server
               (the group's last id, logged like goTalk's ACK), so a
               receiver that reconnects resumes; PUBLISH would keep
               nothing, and plain XREAD would keep the place in the client;
            3. latency: the open-loop step on goTalk (line door), Redis
               (PUBLISH -> SUBSCRIBE) and NATS (PUB -> SUB);
            4. idle memory per connection of gotalk, mosquitto (MQTT
               CONNECT), redis and nats (--conns, default 10000);
            5. memory per online user (idle --users 2000) against
               Mosquitto's per connection, and per idle TLS connection
               (idle --tls, 2000) against the 2 KB target.
            Ends with the table of figure, goTalk, peer, ratio, target and
            met; --chart PATH draws it as an SVG. A missing program is
            reported as not installed; CI needs none of them.

  http      the original goTalk's HTTP load: --senders P (default 16)
            pairs, each sender posting /send (token, id, username,
            sendToId, content) on its own keep-alive connection and
            waiting for the reply before the next, each receiver posting
            /sync (token, id; for goTalk also wait=5000, its long-poll) and
            counting messages; --memory (--durable: SQLite). Reports
            messages delivered/s, sends answered/s, /sync requests/s and
            server CPU, then GET /healthz round trips/s on as many
            connections (the floor: a message costs two requests).
            --peer-url runs the same load against a server
            speaking the original's forms (the original Go goTalk),
            side by side with the ratio.
  abuse     the attacks of RELIABILITY.md, each for --seconds (default 4)
            and a count limit against a fresh server: longpoll, silent,
            waiters, unread, mailbox (--memory and durable), client-id,
            login-flood, send-rate, fan-out, connect-storm. Reports server
            RSS before / peak / after, its open files, a bystander's PING
            p50/p99 during the attack against idle, whether a new client is
            served, and for the login flood and the connect storm the
            genuine LOGIN's latency. The server keeps its fair shares
            (send, fan-out, read and connection rates) at their defaults;
            every other scenario lifts them. The attacker connects from
            127.0.0.1, everyone else from 127.0.0.2; its threads run at
            nice 19 (--attacker-nice), as a remote attacker's CPU would
            not be the server's.

The open-loop latency step (relay --ws, cluster, compare): one sender at
a fixed --rate (default 10000) messages/s of 100 bytes to one receiver,
--seconds timed (default 5) after --warmup (default 1). Message i is due
at i/rate s; a late sender sends what is overdue at once and each latency
counts from the message's due time, so a stall is measured rather than
hidden. Reports p50, p99 and max from due time to receipt (µs), the
sender's own p99 lateness (if that is large, the bench fell behind) and
any message missing 5 s after the last was due.

Flags:
  --server PATH        gotalk binary (default: the gotalk beside this
                       binary, e.g. target/release/gotalk)
  --seconds N          measured seconds (relay 10, durable 5 per level,
                       http 5, compare 5 per server and step, open-loop
                       latency 5)
  --warmup N           seconds of load before measuring (relay 2, durable 1,
                       compare and open-loop latency 1)
  --senders S          relay senders (default 4, compare 32)
  --rate N             messages/s of the open-loop latency step (default
                       10000; cluster 5000)
  --receivers R        relay receivers (default 4, compare 32)
  --window W           SENDs in flight per relay sender (default 512,
                       compare 64)
  --chart PATH         compare: also write the targets table as a
                       self-contained SVG chart (e.g. docs/compare.svg)
  --rounds N           compare and http: run each step N times, interleaved
                       (every server's round 1, then every server's round
                       2, ...), and keep each server's best (default 1;
                       issue 22's figures are best of 3)
  --seconds N          measured seconds (relay 10, durable 5 per level, http 5,
                       compare 5 per server)
  --warmup N           seconds of load before measuring (relay 2, durable 1,
                       http 1)
  --senders S          relay senders (default 4); http: pairs (default 16)
  --rate N             cluster: messages/s of the latency step (default
                       5000)
  --receivers R        relay receivers (default 4)
  --window W           SENDs in flight per relay sender (default 512)
  --durable            relay against the durable store (--data in a temp
                       dir) instead of --memory
  --postgres URL       durable: also measure a server on this PostgreSQL
                       database; relay --durable: use it instead of SQLite.
                       Every table in it is dropped at each server start
  --tls                relay plain, then over TLS against a server with a
                       certificate from its own gen-cert (setup LOGINs
                       plain, relay connections AUTH over TLS), side by
                       side with the ratio; idle: plain PINGed connections,
                       then TLS ones, each on a fresh server
  --ws                 relay and idle: the line door, then WebSocket (/ws,
                       connections AUTH with the users' tokens), each on a
                       fresh server, side by side
  --users [N]          idle: N different users (default 2000), each AUTHed
                       with its own token on one idle connection; reports
                       RSS at rest and all online, and bytes per online user
  --levels A,B,C       durable concurrency levels (default 1,16,64)
  --conns N            login: users logging in at once (default 32, at
                       most 1000); idle: connections (default 10000, 2000 with --tls); needs about N+100
                       open files: the bench raises its soft RLIMIT_NOFILE
                       to the hard limit itself (the server inherits it) and
                       fails clearly when even that is too low; run it under
                       `bash -c 'ulimit -n 65536; ...'` then
  --max-messages N     stop sending after N messages whatever the time
                       (default 100000000)
  --attack NAME        abuse: run only this attack (repeat, or A,B,C)
  --server-arg ARG     abuse, backlog, durable, history: pass ARG to the server (repeat for more,
                       e.g. --server-arg=--max-output=1048576)
  --attacker-nice N    abuse: nice value of the attacker's threads, 0..=19
                       (default 19: the attacker's own CPU, which a remote
                       attacker spends on its own machine, gives way to the
                       server and the bystander; 0: a co-located attacker
                       at the server's priority)
  --server-open-files N
                       abuse: the server's open-file limit, soft and hard
                       (default 1024 for longpoll and silent, else the
                       bench's own; 0 inherits the bench's for all)
  --no-history         hotpath: the core of `gotalk --no-history`
  --no-shares          hotpath: no send or fan-out rate (0), so SEND skips
                       the shares' check
  --history-memory-bytes N
                       hotpath: the history's RAM budget (default the
                       server's, 64 MiB); a small one reaches the steady
                       state (the oldest message leaves as one arrives)
                       within a short run
  --peer-url URL       http: also load the server at http://HOST:PORT
                       (the original Go goTalk: tokens are not checked
                       there; its CPU is read from the process listening
                       on the port, when this user may see it)
  --help               print this help

Example: cargo build --release --workspace && target/release/gotalk-bench relay
";
