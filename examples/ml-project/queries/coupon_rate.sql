-- How often items carry a coupon, from a column that is 99 % NULL (`sparse`).
SELECT count(coupon) AS with_coupon, avg(coupon) AS mean_coupon
FROM 'data/features_narrow.parquet';
