//! The directory's rules, without a broker: names, holds, the cap, tokens, external ids
//! and what a restore brings back.

use super::*;

const HOLD: Duration = Duration::from_secs(60);

#[test]
fn tokens_are_random_128_bit_hex() {
    let a = ResumeToken::generate().unwrap();
    let b = ResumeToken::generate().unwrap();
    assert_eq!(a.expose().len(), 32);
    assert!(a.expose().chars().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(a, b);
    assert_eq!(format!("{a:?}"), "ResumeToken(..)");
}

#[test]
fn resume_gives_back_the_same_user_and_name() {
    let t0 = Instant::now();
    let mut dir = Directory::new(HOLD, 100);
    let first = dir.login_with_name("Alice".into(), t0).unwrap();
    dir.session_ended(first.user.id, t0);
    let again = dir.login_with_token(&first.token, t0 + HOLD / 2).unwrap();
    assert_eq!(again.user, first.user);
    assert!(!again.new_user);
    assert_eq!(
        dir.login_with_token(&ResumeToken::from_client("nope"), t0)
            .unwrap_err(),
        ChatError::InvalidToken
    );
}

#[test]
fn names_are_held_case_insensitively_while_online_and_for_the_hold() {
    let t0 = Instant::now();
    let mut dir = Directory::new(HOLD, 100);
    let alice = dir.login_with_name("Alice".into(), t0).unwrap();
    let taken = dir.login_with_name("aLICE".into(), t0).unwrap_err();
    assert_eq!(taken.code(), "name_taken");
    dir.session_ended(alice.user.id, t0);
    // Still held after the holder left ...
    assert!(dir.login_with_name("alice".into(), t0 + HOLD).is_err());
    // ... and free once the hold ran out; the old token dies with it.
    let bob = dir.login_with_name("alice".into(), t0 + HOLD * 2).unwrap();
    assert_ne!(bob.user.id, alice.user.id);
    assert!(dir.login_with_token(&alice.token, t0 + HOLD * 2).is_err());
}

#[test]
fn past_the_cap_the_oldest_expired_hold_goes_first() {
    let t0 = Instant::now();
    let mut dir = Directory::new(HOLD, 3);
    let first = dir.login_with_name("first".into(), t0).unwrap();
    let second = dir.login_with_name("second".into(), t0).unwrap();
    let online = dir.login_with_name("online".into(), t0).unwrap();
    dir.session_ended(first.user.id, t0);
    dir.session_ended(second.user.id, t0 + HOLD / 2);
    // Both held: a fourth name is refused, clearly, and nobody is forgotten.
    let full = dir.login_with_name("fourth".into(), t0 + HOLD).unwrap_err();
    assert_eq!(full, ChatError::TooManyUsers(3));
    assert_eq!(full.code(), "server_full");
    assert!(full.to_string().contains("keeps 3 users"), "{full}");
    assert_eq!(dir.len(), 3);
    // A returning user still gets in past the cap.
    let back = dir.login_with_token(&second.token, t0 + HOLD).unwrap();
    dir.session_ended(back.user.id, t0 + HOLD);
    // Once the first hold expired, the first user goes, and only them.
    let later = t0 + HOLD + Duration::from_secs(1);
    let fourth = dir.login_with_name("fourth".into(), later).unwrap();
    assert!(!dir.knows(first.user.id));
    assert!(dir.knows(second.user.id) && dir.knows(online.user.id));
    assert!(dir.knows(fourth.user.id));
    assert_eq!(dir.len(), 3);
    assert!(dir.login_with_token(&first.token, later).is_err());
    // The sweep reports the user forgotten for the cap, so the broker drops their
    // private rooms too.
    assert_eq!(dir.sweep(later), vec![first.user.id]);
}

#[test]
fn with_everyone_online_the_cap_refuses_and_loses_nothing() {
    let t0 = Instant::now();
    let mut dir = Directory::new(HOLD, 2);
    let a = dir.login_with_name("a".into(), t0).unwrap();
    let b = dir.login_with_name("b".into(), t0).unwrap();
    for later in [t0, t0 + HOLD * 10] {
        let full = dir.login_with_name("c".into(), later).unwrap_err();
        assert_eq!(full, ChatError::TooManyUsers(2));
    }
    // Nobody was forgotten: both still resume, with their names.
    assert_eq!(
        dir.login_with_token(&a.token, t0 + HOLD * 10).unwrap().user,
        a.user
    );
    assert_eq!(
        dir.login_with_token(&b.token, t0 + HOLD * 10).unwrap().user,
        b.user
    );
    assert_eq!(dir.sweep(t0 + HOLD * 10), vec![]);
}

#[test]
fn an_online_user_is_never_expired_and_sweep_forgets_the_rest() {
    let t0 = Instant::now();
    let mut dir = Directory::new(HOLD, 100);
    let online = dir.login_with_name("on".into(), t0).unwrap();
    let gone = dir.login_with_name("gone".into(), t0).unwrap();
    dir.session_ended(gone.user.id, t0);
    assert_eq!(dir.sweep(t0 + HOLD * 10), vec![gone.user.id]);
    assert!(dir.find_by_name("ON", t0 + HOLD * 10).is_some());
    assert!(dir.find_by_name("gone", t0 + HOLD * 10).is_none());
    assert!(dir.login_with_token(&online.token, t0 + HOLD * 10).is_ok());
}

#[test]
fn only_the_hash_of_a_token_is_kept() {
    let t0 = Instant::now();
    let mut dir = Directory::new(HOLD, 100);
    let alice = dir.login_with_name("alice".into(), t0).unwrap();
    let kept = format!("{:?}", dir.users);
    assert!(!kept.contains(alice.token.expose()), "{kept}");
    assert_eq!(alice.token.hash(), dir.users[&alice.user.id].token);
    assert_ne!(alice.token.hash(), ResumeToken::generate().unwrap().hash());
}

#[test]
fn a_restored_directory_resumes_by_token_and_holds_names_by_wall_clock() {
    let t0 = Instant::now();
    let mut before = Directory::new(HOLD, 100);
    let alice = before.login_with_name("alice".into(), t0).unwrap();
    let old = before.login_with_name("bob".into(), t0).unwrap();
    let stored = |identity: &Identity, away| StoredUser {
        user: identity.user.clone(),
        token: identity.token.hash(),
        away,
    };
    let users = vec![
        stored(&alice, HOLD / 2),
        // Its hold ran out while the server was stopped.
        stored(&old, HOLD * 2),
    ];
    let mut dir = Directory::restore(HOLD, 100, users, vec![], 3, t0);
    assert_eq!(dir.next_id(), 3, "ids are never given twice");
    let again = dir.login_with_token(&alice.token, t0).unwrap();
    assert_eq!(again.user, alice.user);
    assert!(dir.login_with_token(&old.token, t0).is_err());
    assert!(dir.login_with_name("bob".into(), t0).is_ok());
    // Alice's hold goes on from where it was: half of it is left.
    dir.session_ended(alice.user.id, t0);
    assert!(dir.login_with_name("ALICE".into(), t0 + HOLD / 2).is_err());
}

#[test]
fn a_name_taken_over_after_its_hold_goes_to_the_newer_user_on_restore() {
    let t0 = Instant::now();
    let name = |id, token: &ResumeToken, away| StoredUser {
        user: UserRef {
            id: UserId(id),
            name: Arc::from("carol"),
        },
        token: token.hash(),
        away,
    };
    let (older, newer) = (
        ResumeToken::generate().unwrap(),
        ResumeToken::generate().unwrap(),
    );
    let users = vec![name(1, &older, HOLD / 2), name(5, &newer, HOLD / 4)];
    let mut dir = Directory::restore(HOLD, 100, users, vec![], 1, t0);
    assert!(dir.login_with_token(&older, t0).is_err());
    assert_eq!(dir.login_with_token(&newer, t0).unwrap().user.id, UserId(5));
    assert_eq!(dir.next_id(), 6);
}

#[test]
fn an_external_id_is_the_same_user_across_logins_and_holds() {
    let t0 = Instant::now();
    let mut dir = Directory::new(HOLD, 100);
    let first = dir.login_external("acct-7", "Alice".into(), t0).unwrap();
    assert!(first.new_user);
    // A second tab: the same user, a fresh token that replaces the old one.
    let second = dir.login_external("acct-7", "Alice".into(), t0).unwrap();
    assert_eq!(second.user, first.user);
    assert!(!second.new_user);
    assert!(dir.login_with_token(&first.token, t0).is_err());
    assert!(dir.login_with_token(&second.token, t0).is_ok());
    // While kept, a new display name is not taken up.
    let renamed = dir.login_external("acct-7", "Alicia".into(), t0).unwrap();
    assert_eq!(&*renamed.user.name, "Alice");
    for _ in 0..4 {
        dir.session_ended(first.user.id, t0);
    }
    // Forgotten after the hold, and back with the same id and the new name.
    let later = t0 + HOLD * 2;
    assert_eq!(dir.sweep(later), vec![first.user.id]);
    let back = dir
        .login_external("acct-7", "Alicia".into(), later)
        .unwrap();
    assert_eq!(back.user.id, first.user.id);
    assert_eq!(&*back.user.name, "Alicia");
    assert!(back.new_user);
    // Another external id is another user; a name user is not an external one.
    let bob = dir.login_external("acct-8", "Bob".into(), later).unwrap();
    assert_ne!(bob.user.id, first.user.id);
    let carol = dir.login_with_name("Carol".into(), later).unwrap();
    assert!(carol.user.id.0 > bob.user.id.0);
}

#[test]
fn an_external_user_meets_the_name_rules_of_a_new_name() {
    let t0 = Instant::now();
    let mut dir = Directory::new(HOLD, 2);
    dir.login_with_name("alice".into(), t0).unwrap();
    let taken = dir
        .login_external("acct-1", "ALICE".into(), t0)
        .unwrap_err();
    assert_eq!(taken, ChatError::NameTaken("ALICE".into()));
    // The refused login mapped nothing: the id is free for a later, valid login.
    dir.login_external("acct-1", "bob".into(), t0).unwrap();
    let full = dir
        .login_external("acct-2", "carol".into(), t0)
        .unwrap_err();
    assert_eq!(full, ChatError::TooManyUsers(2));
}

#[test]
fn a_restored_directory_keeps_external_ids_and_their_users() {
    let t0 = Instant::now();
    let externals = vec![("acct-7".to_owned(), UserId(9))];
    let mut dir = Directory::restore(HOLD, 100, vec![], externals, 2, t0);
    assert_eq!(
        dir.next_id(),
        10,
        "an external user's id is never given again"
    );
    let back = dir.login_external("acct-7", "Alice".into(), t0).unwrap();
    assert_eq!(back.user.id, UserId(9));
    assert_eq!(
        dir.login_with_name("bob".into(), t0).unwrap().user.id,
        UserId(10)
    );
}
