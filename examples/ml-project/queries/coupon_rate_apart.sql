-- The same from the coupons kept apart: only the items that have one.
SELECT count(coupon) AS with_coupon, avg(coupon) AS mean_coupon
FROM 'data/coupons.parquet';
