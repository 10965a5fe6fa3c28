//! axe-core on a page of a browser story: zero accessibility violations, or a failure
//! naming each one (its rule, its impact, and the elements it found them on).

use serde_json::json;

use super::browser::ensure;
use super::page::Page;
use super::TestResult;

/// axe-core 4.14.1, as published (its license header kept; see
/// `tests/fixtures/axe-core.README.md`).
const AXE: &str = include_str!("../fixtures/axe.min.js");

/// Runs axe-core on the page as it is and fails with every violation found.
pub async fn no_violations(page: &Page, what: &str) -> TestResult {
    let loaded = page.eval("typeof window.axe === 'object'").await?;
    if loaded != json!(true) {
        page.client.execute(AXE, vec![]).await?;
    }
    let violations = page
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];\
             axe.run(document, { resultTypes: ['violations'] })\
               .then(r => done(r.violations.map(v => \
                 [v.id, v.impact, v.nodes.map(n => n.target.join(' ') + ': ' + n.failureSummary)])))\
               .catch(e => done([['axe-error', String(e), []]]));",
            vec![],
        )
        .await?;
    ensure(violations == json!([]), || {
        format!("axe-core violations on {what}: {violations:#}")
    })
}
