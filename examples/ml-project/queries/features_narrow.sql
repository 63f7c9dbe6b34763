-- The same from the copy typed as its values need (INTEGER, SMALLINT, FLOAT).
SELECT tier, count(*) AS items, avg(clicks) AS clicks, avg(score) AS score, max(item_id) AS last_item
FROM 'data/features_narrow.parquet'
GROUP BY tier
ORDER BY tier;
