-- The example's data, generated (never committed): one table per thing a data hint looks at,
-- each with its fixed twin beside it. Every query in queries/ reads these files.
-- 500,000 purchases by 50,000 users over a year, in time order, once as CSV and once as Parquet with narrow
-- types (top-users-csv / top-users-parquet: `columnar`).
CREATE TEMP TABLE events AS
SELECT range::INTEGER AS event_id,
       (hash(range) % 50000)::INTEGER AS user_id,
       TIMESTAMP '2026-01-01' + to_seconds(range * 63) AS ts,
       ((hash(range * 13) % 100000) / 100.0)::DECIMAL(8, 2) AS amount,
       ['books', 'games', 'music', 'tools', 'toys'][(hash(range * 17) % 5)::INTEGER + 1]::ENUM('books', 'games', 'music', 'tools', 'toys') AS category,
       (hash(range * 19) % 30)::TINYINT AS day
FROM range(500000);
COPY (SELECT * REPLACE (category::VARCHAR AS category) FROM events) TO 'data/events.csv' (HEADER);
COPY events TO 'data/events.parquet' (FORMAT parquet, ROW_GROUP_SIZE 50000);

-- The same events sorted by user (user-range / user-range-sorted: `no-pruning` of row groups).
COPY (FROM events ORDER BY user_id) TO 'data/events_by_user.parquet' (FORMAT parquet, ROW_GROUP_SIZE 50000);

-- Split into files by day, and by category (toys-by-day / toys-by-category: `no-pruning` of files).
COPY events TO 'data/by_day' (FORMAT parquet, PARTITION_BY (day), OVERWRITE_OR_IGNORE);
COPY events TO 'data/by_category' (FORMAT parquet, PARTITION_BY (category), OVERWRITE_OR_IGNORE);

-- User profiles, kept as monthly snapshots: each user three times (spend-by-country /
-- spend-by-country-dedup: `join-fan-out`).
COPY (SELECT (range % 50000)::INTEGER AS user_id, (range // 50000)::TINYINT AS snapshot,
             ['de', 'fr', 'us', 'jp'][(hash(range % 50000) % 4)::INTEGER + 1] AS country
      FROM range(150000)) TO 'data/user_snapshots.parquet' (FORMAT parquet);

-- Features as a pipeline wrote them (all DOUBLE and VARCHAR), and typed as their values need
-- (features-wide / features-narrow: `narrow-types`); `coupon` is almost always empty, also kept
-- apart with only its rows in coupons.parquet (coupon-rate / coupon-rate-apart: `sparse`).
COPY (SELECT range::DOUBLE AS item_id, (hash(range) % 1000)::DOUBLE AS clicks,
             ((hash(range * 3) % 400) / 4.0)::DOUBLE AS score,
             ['cold', 'warm', 'hot'][(hash(range * 5) % 3)::INTEGER + 1] AS tier,
             CASE WHEN range % 97 = 0 THEN (hash(range) % 50)::DOUBLE END AS coupon
      FROM range(400000)) TO 'data/features_wide.parquet' (FORMAT parquet);
COPY (SELECT item_id::INTEGER AS item_id, clicks::SMALLINT AS clicks, score::FLOAT AS score, tier,
             coupon::SMALLINT AS coupon
      FROM 'data/features_wide.parquet') TO 'data/features_narrow.parquet' (FORMAT parquet);
COPY (SELECT item_id::INTEGER AS item_id, coupon::SMALLINT AS coupon FROM 'data/features_wide.parquet'
      WHERE coupon IS NOT NULL) TO 'data/coupons.parquet' (FORMAT parquet);

-- Three million page views, and a sampled copy to iterate on (views-per-weekday /
-- views-per-weekday-sampled: `sample`).
COPY (SELECT (hash(range) % 365)::SMALLINT AS day, (hash(range * 3) % 50000)::INTEGER AS user_id
      FROM range(3000000)) TO 'data/views.parquet' (FORMAT parquet);
COPY (FROM 'data/views.parquet' USING SAMPLE 100000 ROWS) TO 'data/views_sample.parquet' (FORMAT parquet);

SELECT count(*) AS events FROM 'data/events.parquet';
