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
