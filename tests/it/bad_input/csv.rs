//! CSV import: a broken row is reported with its line and the field, and skipped, while the
//! good rows go in ("the import reports it and goes on"); a file that is not UTF-8 text at
//! all, or has no rows, is refused whole, naming the file and line, and imports nothing.

use chrono::Utc;
use drip::db;
use drip::domain::Timezone;
use drip::subscriptions::NewSubscriber;
use drip::subscriptions::import::{self, ImportReport, Unreadable};

use super::{Snapshot, assert_unchanged, changes, snapshot};
use crate::admin::{admin_app, send, sign_in};
use crate::faults::count;
use crate::on_both_databases;
use crate::support::{Backend, TestApp};

enum Expect {
    /// These addresses were added and these (line, words) rows rejected.
    Report {
        added: &'static [&'static str],
        rejected: &'static [(u64, &'static str)],
    },
    /// Refused whole at this line, saying this.
    Refused { line: u64, says: &'static str },
}

struct Csv {
    case: &'static str,
    bytes: Vec<u8>,
    expect: Expect,
}

fn utf16(text: &str, big_endian: bool, bom: bool) -> Vec<u8> {
    let mut out = Vec::new();
    if bom {
        out.extend(if big_endian {
            [0xFE, 0xFF]
        } else {
            [0xFF, 0xFE]
        });
    }
    for unit in text.encode_utf16() {
        out.extend(if big_endian {
            unit.to_be_bytes()
        } else {
            unit.to_le_bytes()
        });
    }
    out
}

fn cases() -> Vec<Csv> {
    use Expect::*;
    let c = |case, bytes: &[u8], expect| Csv {
        case,
        bytes: bytes.to_vec(),
        expect,
    };
    let sixteen = "email,name,timezone\nu16@example.com,Ann,UTC\n";
    let long = format!("email\n{}@example.com\nc18b@example.com\n", "a".repeat(300));
    vec![
        c(
            "bad address and unknown zone among good rows",
            b"email,name,timezone\nc1a@example.com,A,UTC\nnot-an-address,B,UTC\nc1b@example.com,C,Mars/Olympus\nc1c@example.com,D,\n",
            Report { added: &["c1a@example.com", "c1c@example.com"], rejected: &[(3, "email: must look like"), (4, "timezone: \"Mars/Olympus\" is not a known time zone")] },
        ),
        c(
            "CRLF line ends and a blank line",
            b"email,name,timezone\r\nc2a@example.com,A,UTC\r\nnot-an-address,B,UTC\r\n\r\nc2b@example.com,C,Mars/Olympus\r\nc2c@example.com,\"D\",\"UTC\"\r\n",
            Report { added: &["c2a@example.com", "c2c@example.com"], rejected: &[(3, "email:"), (5, "timezone:")] },
        ),
        c(
            "lone CR line ends (old Mac export)",
            b"email,name,timezone\rc3a@example.com,A,UTC\rnot-an-address,B,UTC\rc3b@example.com,C,UTC",
            Report { added: &["c3a@example.com", "c3b@example.com"], rejected: &[(3, "email:")] },
        ),
        c(
            "blank lines between LF rows",
            b"email\n\nbad\n\n\nc4a@example.com\n",
            Report { added: &["c4a@example.com"], rejected: &[(3, "email:")] },
        ),
        c(
            "too many columns (an unquoted comma in a name)",
            b"email,name,timezone\nc5a@example.com,Smith, Ann,UTC\nc5b@example.com,\"Smith, Bo\",UTC\n",
            Report { added: &["c5b@example.com"], rejected: &[(2, "4 fields where the header has 3")] },
        ),
        c(
            "too many columns without a header",
            b"c6a@example.com,Ann,UTC,extra\nc6b@example.com,Bo,UTC,\n",
            Report { added: &["c6b@example.com"], rejected: &[(1, "4 fields where email,name,timezone has 3")] },
        ),
        c(
            "too few columns (no email in the row)",
            b"name,email\nOnly a name\nBo,c7a@example.com\n",
            Report { added: &["c7a@example.com"], rejected: &[(2, "email: is required")] },
        ),
        c(
            "a quote that never closes",
            b"email,name,timezone\nc8a@example.com,Ann,UTC\nc8b@example.com,\"Bo,UTC\nc8c@example.com,Cy,UTC\n",
            Report { added: &["c8a@example.com"], rejected: &[(3, "never closed: lines 3 to 4")] },
        ),
        c(
            "a quoted line break in a field",
            b"email,name,timezone\n\"c9a@example.com\r\nBcc: x@y.z\",Ann,UTC\nc9b@example.com,\"Bo\nBcc: x@y.z\",UTC\nc9c@example.com,Cy,UTC\n",
            Report { added: &["c9c@example.com"], rejected: &[(2, "runs on from line 2 to line 3"), (4, "runs on from line 4 to line 5")] },
        ),
        c(
            "Latin-1 bytes in one row",
            b"email,name,timezone\nc10a@example.com,Jos\xe9,UTC\nc10b@example.com,Ann,UTC\n",
            Report { added: &["c10b@example.com"], rejected: &[(2, "not UTF-8 text")] },
        ),
        c("UTF-16 LE with a BOM", &utf16(sixteen, false, true), Refused { line: 1, says: "UTF-16" }),
        c("UTF-16 BE with a BOM", &utf16(sixteen, true, true), Refused { line: 1, says: "UTF-16" }),
        c("UTF-16 LE without a BOM", &utf16(sixteen, false, false), Refused { line: 1, says: "NUL bytes" }),
        c("an empty file", b"", Refused { line: 1, says: "no rows" }),
        c("blank lines only", b"\n\r\n\n", Refused { line: 1, says: "no rows" }),
        c("a header only", b"email,name,timezone\r\n", Report { added: &[], rejected: &[] }),
        c(
            "UTF-8 BOM, CRLF, no header",
            b"\xef\xbb\xbfc16a@example.com,Ann,UTC\r\nbad\r\n",
            Report { added: &["c16a@example.com"], rejected: &[(2, "email:")] },
        ),
        c(
            "hostile addresses in rows",
            "email,name\npаypal@example.com,Cyrillic а\nann＠example.com,Fullwidth\nc17a@example.com,\"Ann\u{202E}nimda\"\nc17b@example.com,Ok\n".as_bytes(),
            Report { added: &["c17b@example.com"], rejected: &[(2, "email:"), (3, "email:"), (4, "name: must not contain text direction overrides")] },
        ),
        c(
            "a 300-character address",
            long.as_bytes(),
            Report { added: &["c18b@example.com"], rejected: &[(2, "longer than 254")] },
        ),
    ]
}

async fn emails(t: &TestApp) -> Vec<String> {
    sqlx::query_as::<_, (String,)>("SELECT email FROM subscribers ORDER BY email")
        .fetch_all(t.app.db.pool())
        .await
        .unwrap()
        .into_iter()
        .map(|(e,)| e)
        .collect()
}

/// What an import with good rows may change: the new subscribers, their enrolments and the
/// one event that records the import.
fn assert_only_good_rows_added(
    case: &str,
    before: &Snapshot,
    after: &Snapshot,
    report: &ImportReport,
    added: &[&str],
) {
    for (table, rows) in changes(before, after) {
        assert!(
            ["subscribers", "enrollments", "events"].contains(&table.as_str()),
            "{case}: {table} changed: {rows:#?}"
        );
        assert!(
            rows.iter().all(|r| r.starts_with('+')),
            "{case}: {table} lost or changed rows: {rows:#?}"
        );
    }
    let grew = |table: &str| after[table].len() - before[table].len();
    assert_eq!(grew("subscribers"), added.len(), "{case}: {report:?}");
    assert_eq!(grew("enrollments"), added.len(), "{case}");
    assert_eq!(grew("events"), 1, "{case}: the import is logged once");
}

on_both_databases!(
    csv_import_reports_each_bad_row_by_line_and_imports_only_the_good_ones,
    a_file_refused_whole_in_the_admin_upload_imports_nothing,
    an_import_enrolls_good_rows_reports_bad_ones_and_skips_known_addresses,
    an_unconfirmed_import_queues_one_confirmation_each,
);

async fn csv_import_reports_each_bad_row_by_line_and_imports_only_the_good_ones(backend: Backend) {
    let t = TestApp::with_file_outbox(backend).await;
    t.app.course(None).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (i, c) in cases().into_iter().enumerate() {
        let path = dir.path().join(format!("case{i}.csv"));
        std::fs::write(&path, &c.bytes).unwrap();
        let before = snapshot(&t.app).await;
        let known = emails(&t).await;
        let result = import::import_csv(
            &t.app,
            &crate::support::shipped(&t.app).await,
            &path,
            true,
            Utc::now(),
        )
        .await;
        let after = snapshot(&t.app).await;
        match c.expect {
            Expect::Report { added, rejected } => {
                let report = result.unwrap_or_else(|e| panic!("{}: {e:#}", c.case));
                assert_eq!(
                    report.imported,
                    added.len() as u64,
                    "{}: {report:?}",
                    c.case
                );
                let lines: Vec<u64> = report.rejected.iter().map(|r| r.0).collect();
                let want: Vec<u64> = rejected.iter().map(|r| r.0).collect();
                assert_eq!(
                    lines, want,
                    "{}: rejected lines {:#?}",
                    c.case, report.rejected
                );
                for ((_, why), (_, says)) in report.rejected.iter().zip(rejected) {
                    assert!(why.contains(says), "{}: {why:?} lacks {says:?}", c.case);
                }
                let now = emails(&t).await;
                let new: Vec<&str> = now
                    .iter()
                    .filter(|e| !known.contains(e))
                    .map(String::as_str)
                    .collect();
                assert_eq!(new, added, "{}: exactly the good rows were added", c.case);
                assert_only_good_rows_added(c.case, &before, &after, &report, added);
            }
            Expect::Refused { line, says } => {
                let e = result.expect_err(c.case);
                let u = e
                    .downcast_ref::<Unreadable>()
                    .unwrap_or_else(|| panic!("{}: not a refusal of the file: {e:#}", c.case));
                assert_eq!(u.line, line, "{}", c.case);
                let shown = e.to_string();
                assert!(
                    shown.starts_with(&format!("{}:{line}: ", path.display()))
                        && shown.contains(says),
                    "{}: {shown:?}",
                    c.case
                );
                assert_unchanged(&t, c.case, &before, &after);
            }
        }
    }
    // The command prints each rejected row as `path:line: reason`, and a refused file as an
    // error naming it, with a failing exit code.
    let work = super::cli_workdir();
    let drip = |file: &str| {
        super::drip(
            &t,
            work.path(),
            &["subscribers", "import", file, "--confirmed"],
            "",
        )
    };
    std::fs::write(
        work.path().join("crlf.csv"),
        b"email,name\r\ncli1@example.com,A\r\n\r\nnope,B\r\n",
    )
    .unwrap();
    let out = drip("crlf.csv");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("crlf.csv:4: email: must look like"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 imported"));
    std::fs::write(
        work.path().join("wide.csv"),
        utf16("email\ncli2@example.com\n", false, true),
    )
    .unwrap();
    let before = snapshot(&t.app).await;
    let out = drip("wide.csv");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("wide.csv:1: the file is UTF-16"),
        "{stderr}"
    );
    assert_unchanged(
        &t,
        "UTF-16 through the command",
        &before,
        &snapshot(&t.app).await,
    );
}

async fn a_file_refused_whole_in_the_admin_upload_imports_nothing(backend: Backend) {
    let t = admin_app(backend).await;
    let session = sign_in(&t.app).await;
    let before = snapshot(&t.app).await;
    let csv = utf16("email\nwide@example.com\n", false, true);
    let mut body = format!(
        "--x\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{}\r\n--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"people.csv\"\r\nContent-Type: text/csv\r\n\r\n",
        session.csrf
    )
    .into_bytes();
    body.extend(csv);
    body.extend(b"\r\n--x--\r\n");
    let r = send(
        &t.app,
        "127.0.0.1",
        "POST",
        "/admin/subscribers/import",
        Some(&session.cookie),
        Some("multipart/form-data; boundary=x"),
        None,
        body,
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body.contains("people.csv:1: the file is UTF-16"),
        "{}",
        r.body
    );
    assert_unchanged(&t, "UTF-16 upload", &before, &snapshot(&t.app).await);
}

async fn an_import_enrolls_good_rows_reports_bad_ones_and_skips_known_addresses(backend: Backend) {
    let t = TestApp::with_file_outbox(backend).await;
    let app = &t.app;
    let now = Utc::now();
    let known = NewSubscriber::parse("known@example.com", "", "", Timezone::UTC).unwrap();
    drip::subscriptions::add(
        app,
        &crate::support::shipped(app).await,
        &known,
        true,
        "test",
        now,
    )
    .await
    .unwrap();
    // Header in another order, a bad address, a bad zone, a duplicate, a blank line,
    // and more rows than one batch.
    let mut csv = String::from("\u{feff}Name,Email,TimeZone\n");
    csv.push_str(
        "Ann,ann@example.com,Europe/Paris\n,not-an-address,\nBo,bo@example.com,Mars/Base\n",
    );
    csv.push_str("Ann again,ANN@example.com,\n\nKnown,known@example.com,UTC\n");
    for i in 0..(import::BATCH + 10) {
        csv.push_str(&format!("R{i},r{i}@example.com,Asia/Tokyo\n"));
    }
    let mut calls = Vec::new();
    let report = import::import_reader_with_progress(
        app,
        &crate::support::shipped(app).await,
        csv.as_bytes(),
        true,
        now,
        |p| calls.push((p.bytes, p.report.imported)),
    )
    .await
    .unwrap();
    assert_eq!(report.imported, 1 + import::BATCH as u64 + 10);
    assert_eq!(report.existing, 2, "the duplicate and the known address");
    let lines: Vec<u64> = report.rejected.iter().map(|r| r.0).collect();
    assert_eq!(lines, [3, 4], "{:?}", report.rejected);
    assert!(
        report.rejected[1].1.contains("timezone"),
        "{:?}",
        report.rejected
    );
    assert_eq!(calls.len(), 2, "after the full batch and at the end");
    assert_eq!(calls.last().unwrap().0, csv.len() as u64);
    assert!(calls[0].1 < calls[1].1);
    let enrolled = count(app, "SELECT COUNT(*) FROM enrollments WHERE status = 'active' AND position = 0 AND next_due_at IS NOT NULL").await;
    assert_eq!(enrolled, report.imported as i64 + 1);
    let ann = db::subscribers::by_email(&app.db, "ann@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (ann.name.as_str(), ann.timezone.name()),
        ("Ann", "Europe/Paris")
    );
}

async fn an_unconfirmed_import_queues_one_confirmation_each(backend: Backend) {
    let t = TestApp::with_file_outbox(backend).await;
    let app = &t.app;
    let csv = "a@example.com,A,UTC\nb@example.com,,\n";
    let report = import::import_reader(
        app,
        &crate::support::shipped(app).await,
        csv.as_bytes(),
        false,
        Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(report.imported, 2);
    assert_eq!(
        count(
            app,
            "SELECT COUNT(*) FROM deliveries WHERE kind = 'confirm' AND status = 'queued'"
        )
        .await,
        2
    );
    assert_eq!(
        count(
            app,
            "SELECT COUNT(*) FROM subscribers WHERE status = 'pending'"
        )
        .await,
        2
    );
    assert_eq!(count(app, "SELECT COUNT(*) FROM enrollments").await, 0);
}
