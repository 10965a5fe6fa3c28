//! The runnable examples work: each is built by `cargo test` and its code is run here.

#[path = "../examples/embed.rs"]
#[allow(dead_code)]
mod embed;

#[tokio::test]
async fn the_embedding_example_greets_its_user() {
    let answer = tokio::time::timeout(std::time::Duration::from_secs(20), embed::run())
        .await
        .expect("the example ends by itself")
        .expect("the example runs");
    assert_eq!(answer, "hello, alice!");
}

#[path = "../examples/accounts.rs"]
#[allow(dead_code)]
mod accounts;

#[tokio::test]
async fn the_accounts_example_logs_its_own_users_in() {
    let lines = tokio::time::timeout(std::time::Duration::from_secs(20), accounts::run())
        .await
        .expect("the example ends by itself")
        .expect("the example runs");
    assert_eq!(
        lines,
        [
            "ann's phone and laptop are user 1 and user 1",
            "bo is user 2",
            "a second account named ann shows as ann-1003",
            "an unknown key is refused",
        ]
    );
}
