//! The `drip` command given bad input: each exits with a failure code, names the field (or
//! the file) on standard error, and changes nothing.

use super::{assert_unchanged, cli_workdir, drip, snapshot};
use crate::on_both_databases;
use crate::support::{Backend, TestApp};

struct Command {
    case: &'static str,
    args: &'static [&'static str],
    stdin: &'static str,
    /// The exit code: 2 when the command line itself is refused (clap), else 1.
    code: i32,
    says: &'static str,
}

const CASES: &[Command] = &[
    Command {
        case: "subscribers add: CR/LF in the address",
        args: &["subscribers", "add", "a@example.com\r\nBcc: x@y.z"],
        stdin: "",
        code: 1,
        says: "email: must not contain line breaks",
    },
    Command {
        case: "subscribers add: a look-alike address",
        args: &["subscribers", "add", "pаypal@example.com"],
        stdin: "",
        code: 1,
        says: "email: the part before @ has characters",
    },
    Command {
        case: "subscribers add: an unknown time zone",
        args: &[
            "subscribers",
            "add",
            "ok@example.com",
            "--timezone",
            "Mars/Olympus",
        ],
        stdin: "",
        code: 1,
        says: "timezone: \"Mars/Olympus\" is not a known time zone",
    },
    Command {
        case: "subscribers add: a name with a line break",
        args: &[
            "subscribers",
            "add",
            "ok@example.com",
            "--name",
            "Ann\nBcc: x@y.z",
        ],
        stdin: "",
        code: 1,
        says: "name: must not contain line breaks",
    },
    Command {
        case: "simulate: an unknown time zone",
        args: &["simulate", "--timezone", "UTC+25"],
        stdin: "",
        code: 1,
        says: "timezone: \"UTC+25\" is not a known time zone",
    },
    Command {
        case: "tick: a time that is not RFC 3339",
        args: &["tick", "--now", "yesterday"],
        stdin: "",
        code: 2,
        says: "--now",
    },
    Command {
        case: "ingest: an empty message",
        args: &["ingest"],
        stdin: "",
        code: 1,
        says: "message: the message is empty",
    },
    Command {
        case: "ingest: a missing file",
        args: &["ingest", "nowhere.eml"],
        stdin: "",
        code: 1,
        says: "cannot read nowhere.eml",
    },
    Command {
        case: "subscribers import: a missing file",
        args: &["subscribers", "import", "nowhere.csv"],
        stdin: "",
        code: 1,
        says: "cannot open nowhere.csv",
    },
    Command {
        case: "lessons preview: an unknown lesson",
        args: &["lessons", "preview", "no-such-lesson"],
        stdin: "",
        code: 1,
        says: "no lesson \"no-such-lesson\"",
    },
    Command {
        case: "admin add: a short password",
        args: &["admin", "add", "eve", "--email", "eve@example.org"],
        stdin: "short\n",
        code: 1,
        says: "password: must be at least 12 characters",
    },
    Command {
        case: "admin token: an unknown user",
        args: &["admin", "token", "nobody"],
        stdin: "",
        code: 1,
        says: "user: no admin named \"nobody\"",
    },
];

on_both_databases!(the_command_refuses_bad_input_naming_the_field,);

async fn the_command_refuses_bad_input_naming_the_field(backend: Backend) {
    let t = TestApp::with_file_outbox(backend).await;
    t.app.course(None).await.unwrap();
    let work = cli_workdir();
    let before = snapshot(&t.app).await;
    for c in CASES {
        let out = drip(&t, work.path(), c.args, c.stdin);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(c.code), "{}: {stderr}", c.case);
        assert!(stderr.contains(c.says), "{}: {stderr}", c.case);
        assert_unchanged(&t, c.case, &before, &snapshot(&t.app).await);
    }
}
