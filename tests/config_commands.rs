//! Command lines (`alert.sendmail`, `alert.command`, `task.NAME.command`): quoted
//! words, escapes and comments read the same in every command key, each quoting
//! mistake names file, line and key, and what is printed reads back to the same
//! words, through `--check-config` too.

mod common;

use common::config::*;
use common::{TempDir as Tmp, run};
use system_agent::config::Config;

// ---------------------------------------------------------------- command lines

/// The argv of `command = VALUE` in each command key.
fn argvs(value: &str) -> [Vec<String>; 3] {
    let c = ok(&format!(
        "[alert]\nsendmail = {value}\ncommand = {value}\n[task.x]\ncommand = {value}\n"
    ));
    [
        c.alert.sendmail.clone(),
        c.alert.command.clone(),
        c.tasks[0].command.clone(),
    ]
}

fn words(w: &[&str]) -> Vec<String> {
    w.iter().map(|s| s.to_string()).collect()
}

#[test]
fn commands_take_quoted_words_in_every_command_key() {
    for (value, want) in [
        (
            "\"/opt/my tool/x\" --flag 'a b'",
            &["/opt/my tool/x", "--flag", "a b"][..],
        ),
        (
            "/usr/bin/find /var/tmp -name \"*.tmp\"",
            &["/usr/bin/find", "/var/tmp", "-name", "*.tmp"],
        ),
        (
            "'/opt/my tool/x' \"a 'b'\" 'c \"d\"'",
            &["/opt/my tool/x", "a 'b'", "c \"d\""],
        ),
        // Backslashes: outside quotes the next character is literal; in "..."
        // only \" and \\ are escapes; in '...' nothing is.
        (
            "/bin/a b\\ c \\\"d\\\" e\\\\f \\'g",
            &["/bin/a", "b c", "\"d\"", "e\\f", "'g"],
        ),
        (
            "/bin/a \"x\\\"y\" \"p\\\\q\" \"r\\ts\" 'u\\v'",
            &["/bin/a", "x\"y", "p\\q", "r\\ts", "u\\v"],
        ),
        // Empty words, and quotes joining parts of one word.
        ("/bin/a \"\" '' x\"y z\"'!'", &["/bin/a", "", "", "xy z!"]),
        ("/bin/a --opt=\"a b\"", &["/bin/a", "--opt=a b"]),
        // Comments: a ; or # that starts a word; kept inside a word or quotes.
        (
            "/usr/sbin/sendmail -t -i      ; or e.g. /usr/bin/msmtp -t",
            &["/usr/sbin/sendmail", "-t", "-i"],
        ),
        (
            "/bin/a b#c \"d ;e\" 'f #g' # note",
            &["/bin/a", "b#c", "d ;e", "f #g"],
        ),
        ("/bin/a \\;b \\#c", &["/bin/a", ";b", "#c"]),
        // Blanks of any width, tabs too.
        ("/bin/a \t b", &["/bin/a", "b"]),
    ] {
        let want = words(want);
        assert_eq!(argvs(value), [want.clone(), want.clone(), want], "{value}");
    }
}

#[test]
fn command_quoting_errors_name_file_line_and_key() {
    for (value, message) in [
        (
            "/bin/echo \"abc",
            "unterminated \" quote (close it, or escape it as \\\")",
        ),
        (
            "/bin/echo it's",
            "unterminated ' quote (close it, or escape it as \\')",
        ),
        (
            "/bin/echo \"a\\\"",
            "unterminated \" quote (close it, or escape it as \\\")",
        ),
        // A quote that opens the value is checked as the line is read.
        ("\"/opt/my tool/x --flag", "unterminated \" quote"),
        ("'/opt/x\\' y", "unterminated ' quote"),
        ("\"/opt/x\"\"y", "unterminated \" quote"),
        (
            "\"my tool\" x",
            "the program must be an absolute path: \"my tool\"",
        ),
        ("; only a comment", "a command is required"),
    ] {
        for (section, key) in [
            ("alert", "sendmail"),
            ("alert", "command"),
            ("task.x", "command"),
        ] {
            assert_eq!(
                bad(section, key, value),
                format!("/etc/a.ini:2: {section}.{key}: {message}"),
                "{value}"
            );
        }
    }
    // An empty alert command is none; an empty quoted one too.
    assert!(val("alert", "command", "").alert.command.is_empty());
    assert!(val("alert", "command", "\"\"").alert.command.is_empty());
}

#[test]
fn commands_print_back_to_the_same_words() {
    let input = "[alert]\nsendmail = \"/opt/my mailer/send\" -f 'ops team' ; comment\n\
                command = /bin/page \"\" 'a\"b' \"c\\\\d\" e\\;f #g\n\
                [task.find]\ncommand = /usr/bin/find /var/tmp -name \"*.tmp\" -newer \"/a b/#c\"\n";
    let c = ok(input);
    let ini = c.to_ini();
    for line in [
        "\nsendmail = \"/opt/my mailer/send\" -f \"ops team\"\n",
        "\ncommand = /bin/page \"\" \"a\\\"b\" \"c\\\\d\" \"e;f\"\n",
        "\ncommand = /usr/bin/find /var/tmp -name *.tmp -newer \"/a b/#c\"\n",
    ] {
        assert!(ini.contains(line), "{line:?} in\n{ini}");
    }
    assert_eq!(
        c.alert.command,
        words(&["/bin/page", "", "a\"b", "c\\d", "e;f"])
    );
    assert_eq!(parse(&ini), Ok(c.clone()));
    // --check-config prints the same, and its output loads to the same config.
    let tmp = Tmp::new("check-commands");
    let path = tmp.write("a.ini", input);
    let out = run(&["--check-config", "-c", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let printed = text(&out.stdout);
    let keys: String = printed
        .lines()
        .filter(|l| !l.starts_with(';'))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(keys, ini, "{printed}");
    let again = tmp.write("b.ini", &printed);
    let reloaded = Config::load(&again, true).unwrap();
    assert_eq!(
        (reloaded.alert, reloaded.tasks),
        (c.alert.clone(), c.tasks.clone())
    );
}
