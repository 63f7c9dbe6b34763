-- looptop history, schema version 7: GPUs one by one. `gpu_verdicts` holds the verdict's
-- `gpus` list as JSON ({"index","busy_pct","job_sm_pct","job_present","stall_ms",...} per GPU
-- the run held); `gpu_samples` gains what the per-GPU judgement reads. NULL is "not read".
ALTER TABLE runs ADD COLUMN gpu_verdicts VARCHAR;
-- SM share of every process on the GPU that is not the run's (NVML's per-process samples).
ALTER TABLE gpu_samples ADD COLUMN others_sm_pct INTEGER;
ALTER TABLE gpu_samples ADD COLUMN power_limit_mw INTEGER;
-- GPM (Hopper and newer): SM activity, SM occupancy and tensor activity, 0-100.
ALTER TABLE gpu_samples ADD COLUMN sm_active_pct DOUBLE;
ALTER TABLE gpu_samples ADD COLUMN sm_occupancy_pct DOUBLE;
ALTER TABLE gpu_samples ADD COLUMN tensor_active_pct DOUBLE;
-- Share of the driver's finer utilization samples since the previous sample under the stall
-- threshold (nvmlDeviceGetSamples).
ALTER TABLE gpu_samples ADD COLUMN idle_sample_pct DOUBLE;
-- The GPU ran in MIG mode (no utilization there).
ALTER TABLE gpu_samples ADD COLUMN mig BOOLEAN;
