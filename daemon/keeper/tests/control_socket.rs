//! The control socket on a real Unix socket: whatever a client sends, it gets an answer or a
//! clean hang-up, and the server keeps serving. No root needed.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use keeper::control::{self, Access, MAX_REQUEST, Pending, Request, Response, Status};

/// Serves `path` on a runtime thread; status requests get an empty status.
fn server(path: &Path) -> std::thread::JoinHandle<()> {
    let path = path.to_path_buf();
    let (ready, wait) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let mut requests = control::serve_with(&path, Access::current()).expect("serve");
            let _ = ready.send(());
            while let Some(Pending { request, reply }) = requests.recv().await {
                let response = match request {
                    Request::Status => Response::Status(Status {
                        instances: Vec::new(),
                        vrrp_unmatched: 7,
                        vrrp_malformed: 0,
                        real_servers: Vec::new(),
                        checker: None,
                        virtual_servers: Vec::new(),
                    }),
                    Request::Reload => Response::Reloaded {
                        ok: true,
                        message: "done".into(),
                    },
                    Request::Ipvs => Response::Error {
                        message: "no IPVS here".into(),
                    },
                };
                let _ = reply.send(response);
            }
        });
    });
    wait.recv_timeout(Duration::from_secs(10))
        .expect("server up");
    handle
}

fn connect(path: &Path) -> (UnixStream, BufReader<UnixStream>) {
    let s = UnixStream::connect(path).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let r = BufReader::new(s.try_clone().expect("clone"));
    (s, r)
}

fn answer(r: &mut BufReader<UnixStream>) -> Response {
    let mut line = String::new();
    r.read_line(&mut line).expect("an answer");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("answer {line:?} is not a response: {e}"))
}

fn error_of(resp: Response) -> String {
    match resp {
        Response::Error { message } => message,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn requests_not_understood_get_errors_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("keeper.sock");
    let _server = server(&path);
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path)
            .expect("socket")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o660);
    }
    let (mut w, mut r) = connect(&path);
    for (bad, why) in [
        (&b"hello\n"[..], "request not understood"),
        (b"{\"cmd\":\"format_disk\"}\n", "unknown variant"),
        (b"{\"cmd\":\n", "request not understood"),
        (b"[1,2,3]\n", "request not understood"),
        (b"\xff\xfe\xfd\n", "not UTF-8"),
        (
            b"{\"cmd\":\"status\",\"cmd\":\"reload\"}\n",
            "request not understood",
        ),
    ] {
        w.write_all(bad).expect("write");
        let message = error_of(answer(&mut r));
        assert!(message.contains(why), "{bad:?}: {message}");
    }
    // Blank lines are ignored; the same connection still serves real requests.
    w.write_all(b"\n  \n{\"cmd\":\"status\"}\n").expect("write");
    match answer(&mut r) {
        Response::Status(s) => assert_eq!(s.vrrp_unmatched, 7),
        other => panic!("expected a status, got {other:?}"),
    }
    // An overlong line: an error, then the server hangs up (the rest cannot be framed).
    let mut long = vec![b'x'; MAX_REQUEST + 100];
    long.push(b'\n');
    let _ = w.write_all(&long);
    let message = error_of(answer(&mut r));
    assert!(message.contains("longer than"), "{message}");
    let mut rest = Vec::new();
    let _ = r.read_to_end(&mut rest);
    assert!(rest.is_empty(), "nothing after the hang-up");
    // A client that vanishes mid-request does no harm.
    let (mut w2, _) = connect(&path);
    w2.write_all(b"{\"cmd\":\"sta").expect("write");
    drop(w2);
    // The server is fine.
    match control::request(&path.to_path_buf(), &Request::Reload).expect("request") {
        Response::Reloaded { ok, .. } => assert!(ok),
        other => panic!("expected reloaded, got {other:?}"),
    }
}

#[test]
fn access_rules() {
    let a = Access {
        daemon_uid: 986,
        gid: 990,
        group_name: "keeper".into(),
    };
    assert!(a.allows(0, 0, &[]), "root");
    assert!(a.allows(986, 986, &[]), "keeperd's own user");
    assert!(a.allows(1000, 990, &[]), "primary group");
    assert!(a.allows(1000, 1000, &[27, 990]), "supplementary group");
    assert!(!a.allows(1000, 1000, &[27]), "anyone else");
    assert!(!a.allows(65534, 65534, &[]), "nobody");
}
