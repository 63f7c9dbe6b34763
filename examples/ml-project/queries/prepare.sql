-- The events table, generated: 2 million purchases by 50,000 users over a year, written once as
-- CSV and once as Parquet, so that the two queries below read the same data in two formats.
COPY (
    SELECT range AS event_id,
           (hash(range) % 50000)::INTEGER AS user_id,
           TIMESTAMP '2026-01-01' + to_seconds((hash(range * 7) % 31536000)::BIGINT) AS ts,
           round(((hash(range * 13) % 100000) / 100.0)::DOUBLE, 2) AS amount,
           ['books', 'games', 'music', 'tools', 'toys'][(hash(range * 17) % 5)::INTEGER + 1] AS category
    FROM range(2000000)
) TO 'queries/events.csv' (HEADER);
COPY (SELECT * FROM read_csv('queries/events.csv')) TO 'queries/events.parquet' (FORMAT parquet);
SELECT count(*) AS events FROM 'queries/events.parquet';
