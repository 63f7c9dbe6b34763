//! `join-fan-out`: a join that emits clearly more rows than its larger input, so its keys repeat
//! on both sides. Read from the plan, so it is seen on the first run, and under a `GROUP BY` or
//! `ORDER BY ... LIMIT` that hides it from the result. Not seen: a `GROUP BY` on the join key
//! itself, which DuckDB answers by aggregating each side before the join (no join row is ever
//! made), and a plain `LIMIT`, which stops the join after its first rows.

use super::super::hints::Hint;
use super::super::plan::PlanNode;
use super::super::thresholds::{JOIN_FAN_OUT_FACTOR, JOIN_FAN_OUT_MIN_ROWS};

/// One hint per join that fans out.
pub fn hints(plan: &PlanNode) -> Vec<Hint> {
    plan.walk()
        .into_iter()
        .filter(|(node, _)| node.is_join())
        .filter_map(|(join, _)| {
            let (left, right) = (join.children[0].rows, join.children[1].rows);
            let larger = left.max(right);
            if join.rows < JOIN_FAN_OUT_MIN_ROWS || (join.rows as f64) < JOIN_FAN_OUT_FACTOR * larger.max(1) as f64 {
                return None;
            }
            let keys = join.join_keys();
            let on = if keys.is_empty() { "its condition".to_string() } else { keys.join(", ") };
            let factor = join.rows as f64 / larger.max(1) as f64;
            Some(
                Hint::new(
                    "join-fan-out",
                    format!(
                        "the join on {on} emits {} rows from inputs of {left} and {right} rows ({factor:.1}x the larger): \
                         {on} repeats on both sides; deduplicate the side that should be unique before joining \
                         (SELECT DISTINCT ON ({on}) ... or GROUP BY {on}), or join on the full key",
                        join.rows
                    ),
                )
                .with("keys", keys)
                .with("rows", join.rows)
                .with("left_rows", left)
                .with("right_rows", right),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::testing::Data;
    use super::*;

    const SETUP: &str = "COPY (SELECT i AS id, i % 100 AS user_id FROM range(20000) t(i)) TO '{dir}/events.parquet';
        COPY (SELECT i % 100 AS user_id, 'u' || i AS name FROM range(300) t(i)) TO '{dir}/users.parquet';
        COPY (SELECT DISTINCT ON (user_id) * FROM '{dir}/users.parquet') TO '{dir}/users_unique.parquet';";

    #[test]
    fn a_join_on_duplicate_keys_is_named_even_under_a_group_by() {
        let data = Data::new(SETUP);
        let (plan, rows) = data.plan(
            "SELECT e.id % 10 AS bucket, count(*) FROM '{dir}/events.parquet' e JOIN '{dir}/users.parquet' u \
             ON e.user_id = u.user_id GROUP BY 1",
        );
        assert_eq!(rows, 10, "the result hides the fan-out");
        let hints = hints(&plan);
        assert_eq!(hints.len(), 1, "{hints:?}\n{plan:#?}");
        assert_eq!(hints[0].id, "join-fan-out");
        assert_eq!(hints[0].evidence["keys"], serde_json::json!(["user_id"]));
        assert_eq!(hints[0].evidence["rows"], 60_000);
        let sides = [&hints[0].evidence["left_rows"], &hints[0].evidence["right_rows"]];
        assert!(
            sides.contains(&&serde_json::json!(20_000)) && sides.contains(&&serde_json::json!(300)),
            "{sides:?}"
        );
        assert!(hints[0].text.contains("deduplicate"), "{}", hints[0].text);
    }

    #[test]
    fn a_join_on_a_unique_key_is_silent_and_a_top_n_does_not_hide_a_fan_out() {
        let data = Data::new(SETUP);
        let (plan, _) = data.plan(
            "SELECT e.user_id, count(*) FROM '{dir}/events.parquet' e JOIN '{dir}/users_unique.parquet' u \
             ON e.user_id = u.user_id GROUP BY 1",
        );
        assert!(hints(&plan).is_empty(), "{:?}", hints(&plan));
        let (plan, rows) = data.plan(
            "SELECT e.id, u.name FROM '{dir}/events.parquet' e JOIN '{dir}/users.parquet' u USING (user_id) \
             ORDER BY e.id LIMIT 5",
        );
        assert_eq!(rows, 5);
        assert_eq!(hints(&plan).len(), 1, "a LIMIT does not hide it: {plan:#?}");
    }
}
