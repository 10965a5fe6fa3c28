//! The dispatcher without sockets: IRC lines in, the lines that answer them out, against a
//! real engine. Integration tests over real sockets are in `transport-irc/tests/`.

use std::net::IpAddr;
use std::sync::Arc;

use chat_core::{Engine, Login};

use super::{Dispatcher, Reply};
use crate::codec::Input;
use crate::config::IrcConfig;

async fn engine() -> Engine {
    Engine::builder().start().await.expect("engine starts")
}

fn dispatcher(engine: &Engine) -> Dispatcher {
    Dispatcher::new(
        engine.clone(),
        IpAddr::from([127, 0, 0, 1]),
        Arc::new(IrcConfig::default()),
    )
}

/// The lines answering `line`, as written on the wire (without `\r\n`).
async fn answer(d: &mut Dispatcher, line: &str) -> Vec<String> {
    match d.dispatch(Input::Line(line.into())).await {
        Reply::Answer(lines) | Reply::Quit(lines) => lines
            .iter()
            .map(|l| l.to_string().trim_end().to_owned())
            .collect(),
        Reply::Post(tag, post) => {
            post.await
                .map_err(|e| format!("{} refused: {e}", tag.verb))
                .expect("stored");
            Vec::new()
        }
    }
}

async fn registered(engine: &Engine, nick: &str) -> Dispatcher {
    let mut d = dispatcher(engine);
    assert!(answer(&mut d, &format!("NICK {nick}")).await.is_empty());
    let lines = answer(&mut d, &format!("USER {nick} 0 * :{nick}")).await;
    assert!(lines[0].contains(" 001 "), "{lines:?}");
    d
}

#[tokio::test]
async fn registration_waits_for_cap_end_and_offers_the_capabilities() {
    let engine = engine().await;
    let mut d = dispatcher(&engine);
    let ls = answer(&mut d, "CAP LS 302").await;
    assert_eq!(ls.len(), 1);
    for cap in [
        "server-time",
        "message-tags",
        "echo-message",
        "batch",
        "draft/chathistory",
    ] {
        assert!(ls[0].contains(cap), "{ls:?}");
    }
    assert!(answer(&mut d, "NICK dave").await.is_empty());
    assert!(
        answer(&mut d, "USER root 0 * :root").await.is_empty(),
        "waits for CAP END"
    );
    let ack = answer(&mut d, "CAP REQ :server-time echo-message").await;
    assert_eq!(ack, [":flack.irc CAP * ACK :server-time echo-message"]);
    let nak = answer(&mut d, "CAP REQ :sasl").await;
    assert!(nak[0].contains(" NAK "), "{nak:?}");
    let refused = answer(&mut d, "JOIN #general").await;
    assert!(
        refused[0].contains(" 451 * :not_registered: "),
        "{refused:?}"
    );

    let welcome = answer(&mut d, "CAP END").await;
    let codes: Vec<&str> = welcome.iter().filter_map(|l| l.split(' ').nth(1)).collect();
    for code in [
        "001", "002", "003", "004", "005", "375", "372", "376", "NOTICE",
    ] {
        assert!(codes.contains(&code), "{code} missing: {welcome:?}");
    }
    let isupport = welcome
        .iter()
        .filter(|l| l.contains(" 005 "))
        .cloned()
        .collect::<String>();
    for token in [
        "CHANTYPES=#",
        "CASEMAPPING=ascii",
        "NICKLEN=",
        "CHANNELLEN=",
        "UTF8ONLY",
    ] {
        assert!(isupport.contains(token), "{token}: {isupport}");
    }
    assert!(
        welcome.last().unwrap().contains("your resume token: "),
        "{welcome:?}"
    );
    assert_eq!(d.nick(), "dave");
    engine.shutdown().await;
}

#[tokio::test]
async fn nicks_that_are_taken_or_not_nicks_are_refused_and_pass_resumes() {
    let engine = engine().await;
    let web = engine
        .connect(Login::Name("Ann Lee".into()))
        .await
        .expect("web user");
    let token = web.token().expose().to_owned();

    let mut d = dispatcher(&engine);
    let bad = answer(&mut d, "NICK a.b").await;
    assert!(bad[0].contains(" 432 * a.b :invalid_nick: "), "{bad:?}");
    answer(&mut d, "NICK Ann\\20Lee").await;
    let taken = answer(&mut d, "USER x 0 * :x").await;
    assert!(
        taken[0].contains(" 433 * Ann\\20Lee :name_taken: "),
        "{taken:?}"
    );
    assert!(
        taken[0].contains("PASS"),
        "says how to come back: {taken:?}"
    );

    // The web user's token as the server password: the same user, whatever NICK said
    // (NICK and USER are in, so PASS completes the registration).
    let welcome = answer(&mut d, &format!("PASS {token}")).await;
    assert!(
        welcome[0].contains(" 001 Ann\\20Lee :Welcome"),
        "{welcome:?}"
    );
    assert!(
        !welcome.iter().any(|l| l.contains("your resume token:")),
        "not shown again"
    );
    let again = answer(&mut d, "NICK other").await;
    assert!(
        again[0].contains(" 400 Ann\\20Lee NICK :rename_unsupported: "),
        "{again:?}"
    );
    engine.shutdown().await;
}

#[tokio::test]
async fn join_creates_the_channel_and_answers_names_and_history() {
    let engine = engine().await;
    let mut alice = registered(&engine, "alice").await;
    let joined = answer(&mut alice, "JOIN #Rust").await;
    assert_eq!(joined[0], ":alice!u1@flack JOIN #Rust");
    // irc-proto writes a one-word trailing parameter without its `:`, which IRC allows.
    assert!(
        joined[1].ends_with(" 353 alice = #Rust alice"),
        "{joined:?}"
    );
    assert!(joined[2].contains(" 366 alice #Rust "), "{joined:?}");
    assert!(answer(&mut alice, "PRIVMSG #rust :hello there")
        .await
        .is_empty());

    let mut bob = registered(&engine, "bob").await;
    answer(&mut bob, "CAP REQ :server-time message-tags batch").await;
    let joined = answer(&mut bob, "JOIN #rust").await;
    assert!(joined[1].ends_with(":alice bob"), "{joined:?}");
    assert!(
        joined[3].starts_with(":flack.irc BATCH +h1 chathistory #Rust"),
        "{joined:?}"
    );
    assert!(joined[4].starts_with("@msgid=rust.1;time=20"), "{joined:?}");
    assert!(
        joined[4].ends_with(":alice!u1@flack PRIVMSG #Rust :hello there"),
        "{joined:?}"
    );
    assert_eq!(joined[5], ":flack.irc BATCH -h1");

    // Without server-time, history is a NOTICE with the time it was sent.
    let mut carol = registered(&engine, "carol").await;
    let joined = answer(&mut carol, "JOIN #rust").await;
    let notice = joined
        .iter()
        .find(|l| l.contains("NOTICE"))
        .expect("a history notice");
    assert!(
        notice.starts_with(":alice!u1@flack NOTICE #Rust :["),
        "{notice}"
    );
    assert!(notice.ends_with("] hello there"), "{notice}");

    assert!(answer(&mut carol, "TOPIC #rust").await[0].contains(" 331 carol #Rust "));
    assert!(answer(&mut carol, "MODE #rust").await[0].contains(" 324 carol #Rust +nt"));
    assert!(answer(&mut carol, "MODE #rust b").await[0].contains(" 368 "));
    assert!(answer(&mut carol, "MODE #rust +o carol").await[0].contains(" 482 "));
    let who = answer(&mut carol, "WHO #rust").await;
    assert_eq!(who.len(), 4, "{who:?}");
    let list = answer(&mut carol, "LIST").await;
    assert!(list[1].contains(" 322 carol #Rust 3 "), "{list:?}");
    let part = answer(&mut carol, "PART #rust :later").await;
    assert_eq!(part, [":carol!u3@flack PART #Rust later"]);
    let not_on = answer(&mut carol, "TOPIC #rust").await;
    assert!(not_on[0].contains(" 442 "), "{not_on:?}");
    engine.shutdown().await;
}

#[tokio::test]
async fn refusals_are_numerics_with_the_stable_code_never_chat() {
    let engine = engine().await;
    let mut d = registered(&engine, "erin").await;
    for (line, expected) in [
        ("FROBNICATE now", " 421 erin FROBNICATE :unknown_command: "),
        ("PRIVMSG #nowhere :hi", " 404 erin #nowhere :not_joined: "),
        ("PRIVMSG nobody :hi", " 401 erin nobody :no_such_user: "),
        ("PRIVMSG a\\zz :hi", " 401 erin a\\zz :no_such_user: "),
        ("PRIVMSG a,b :hi", " 407 erin a,b :too_many_targets: "),
        (
            "JOIN #bad.name",
            " 479 erin #bad.name :invalid_channel_name: ",
        ),
        ("PART #nowhere", " 442 erin #nowhere :not_joined: "),
        ("JOIN", " 461 erin JOIN :need_more_params: "),
        ("WHOIS ghost", " 401 erin ghost :no_such_user: "),
        ("MODE someone", " 502 erin :users_dont_match: "),
        (
            "PRIVMSG erin :\u{1}VERSION\u{1}",
            " 400 erin PRIVMSG :unsupported_ctcp: ",
        ),
        ("USER a b c d", " 462 erin :already_registered: "),
    ] {
        let lines = answer(&mut d, line).await;
        assert!(
            lines.len() == 1 || line.starts_with("WHOIS"),
            "{line}: {lines:?}"
        );
        assert!(lines[0].contains(expected), "{line}: {lines:?}");
    }
    let ping = answer(&mut d, "PING :lag").await;
    assert_eq!(ping, [":flack.irc PONG flack.irc lag"]);
    let quit = answer(&mut d, "QUIT :bye").await;
    assert_eq!(quit, ["ERROR :Closing link: quit: bye"]);
    engine.shutdown().await;
}
