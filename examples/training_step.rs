//! A synthetic training loop with tunable phases, to see what looptop says about an
//! input-bound and a compute-bound job without Python or a GPU.
//!
//! A loader thread prepares each batch (`--load-ms` of CPU work: "decoding"), hands it over a
//! bounded queue of `--prefetch` batches, and the main thread runs the step on it
//! (`--compute-ms` of CPU work). Whichever phase needs more CPU sets the pace:
//!
//! ```sh
//! # input-bound: the loader thread is pinned at 100 % of one core, the step waits for it
//! looptop run --once -- cargo run -q --example training_step -- --load-ms 40 --compute-ms 5
//! # compute-bound: the step is the bottleneck, the loader idles
//! looptop run --once -- cargo run -q --example training_step -- --load-ms 2 --compute-ms 40
//! ```
//!
//! It prints a tqdm-like progress line per step (`step 3/20 · 21.4it/s · loss 0.8123`), so the
//! `tqdm` metric preset picks up the speed, and a summary of where the time went.
//!
//! With `--device cuda` the step runs on a real NVIDIA GPU through the CUDA driver API, with
//! nothing installed but the driver: `libcuda.so.1` is loaded at run time, a small PTX kernel
//! (it spins on the SM clock for `--compute-ms`) is JIT-compiled by the driver, and each step
//! copies a `--batch-kb` batch to the device and runs the kernel on `--blocks` blocks (default:
//! enough to fill every SM). So every case looptop must tell apart exists on any GPU machine:
//!
//! ```sh
//! # GPU-bound: back-to-back long kernels on every SM
//! training_step --device cuda --load-ms 1 --compute-ms 40
//! # starved (input-bound, cpu): the loader's CPU work between short kernels
//! training_step --device cuda --load-ms 40 --compute-ms 2
//! # busy but SMs mostly idle (small-kernels): one block per kernel
//! training_step --device cuda --load-ms 1 --compute-ms 40 --blocks 1
//! # several GPUs held, work on GPU 0 only (idle-gpus)
//! training_step --device cuda --gpus 4 --load-ms 1 --compute-ms 40
//! # GPU unused: the same loop with the device work off
//! training_step --device cpu --load-ms 1 --compute-ms 40
//! ```

use std::ffi::{c_char, c_int, c_uint, c_void, CStr};
use std::hint::black_box;
use std::process::ExitCode;
use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant};

/// Where the step runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Device {
    Cpu,
    Cuda,
}

/// The knobs, from the command line.
struct Phases {
    steps: u32,
    load: Duration,
    compute: Duration,
    prefetch: usize,
    device: Device,
    /// GPUs to hold a context on (`--device cuda`); the work runs on the first.
    gpus: u32,
    /// Blocks per kernel; 0: four per SM.
    blocks: u32,
    /// Bytes copied to the device per step.
    batch_bytes: usize,
}

fn parse(args: impl Iterator<Item = String>) -> Result<Phases, String> {
    let mut phases = Phases {
        steps: 20,
        load: Duration::from_millis(20),
        compute: Duration::from_millis(20),
        prefetch: 2,
        device: Device::Cpu,
        gpus: 1,
        blocks: 0,
        batch_bytes: 1 << 20,
    };
    let mut args = args.peekable();
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        if flag == "--device" {
            phases.device = match value.as_str() {
                "cpu" => Device::Cpu,
                "cuda" => Device::Cuda,
                _ => return Err(format!("--device takes cpu or cuda, not `{value}`")),
            };
            continue;
        }
        let number: u64 = value
            .parse()
            .map_err(|_| format!("{flag} takes a whole number, not `{value}`"))?;
        match flag.as_str() {
            "--steps" => phases.steps = u32::try_from(number).map_err(|_| "--steps is too large".to_string())?,
            "--load-ms" => phases.load = Duration::from_millis(number),
            "--compute-ms" => phases.compute = Duration::from_millis(number),
            "--prefetch" => phases.prefetch = usize::try_from(number.max(1)).unwrap_or(1),
            "--gpus" => phases.gpus = u32::try_from(number.max(1)).map_err(|_| "--gpus is too large".to_string())?,
            "--blocks" => phases.blocks = u32::try_from(number).map_err(|_| "--blocks is too large".to_string())?,
            "--batch-kb" => {
                phases.batch_bytes =
                    usize::try_from(number.saturating_mul(1024)).map_err(|_| "--batch-kb is too large".to_string())?
            }
            _ => {
                return Err(format!(
                    "unknown option {flag} (--steps, --load-ms, --compute-ms, --prefetch, --device, --gpus, \
                     --blocks, --batch-kb)"
                ))
            }
        }
    }
    Ok(phases)
}

/// CPU time this thread has used. Phases are measured in CPU time, not wall time, so a phase
/// does the same work on a busy machine (it only takes longer).
fn thread_cpu() -> Duration {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid timespec to write into; the clock id is a constant.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    Duration::new(
        u64::try_from(now.tv_sec).unwrap_or(0),
        u32::try_from(now.tv_nsec).unwrap_or(0),
    )
}

/// Keeps one core busy for `length` of CPU time, the way decoding or a CPU step does.
fn busy(length: Duration, seed: u64) -> u64 {
    let start = thread_cpu();
    let mut x = seed | 1;
    while thread_cpu() - start < length {
        for _ in 0..1000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
    }
    black_box(x)
}

fn main() -> ExitCode {
    let phases = match parse(std::env::args().skip(1)) {
        Ok(phases) => phases,
        Err(message) => {
            eprintln!("training_step: {message}");
            return ExitCode::from(2);
        }
    };
    let mut gpu = match phases.device {
        Device::Cpu => None,
        Device::Cuda => match cuda::Gpu::open(phases.gpus, phases.blocks, phases.batch_bytes) {
            Ok(gpu) => {
                println!("{}", gpu.describe());
                Some(gpu)
            }
            Err(message) => {
                eprintln!("training_step: --device cuda: {message}");
                return ExitCode::from(1);
            }
        },
    };
    let (batches, queue) = sync_channel::<u64>(phases.prefetch);
    let (steps, load) = (phases.steps, phases.load);
    let loader = std::thread::Builder::new()
        .name("loader".into())
        .spawn(move || {
            for step in 0..steps {
                if batches.send(busy(load, u64::from(step))).is_err() {
                    return;
                }
            }
        })
        .expect("the loader thread starts");

    let start = Instant::now();
    let mut waited = Duration::ZERO;
    for step in 1..=phases.steps {
        let asked = Instant::now();
        let Ok(batch) = queue.recv() else { break };
        waited += asked.elapsed();
        let out = match gpu.as_mut() {
            None => busy(phases.compute, batch),
            Some(gpu) => match gpu.step(phases.compute, batch) {
                Ok(()) => batch,
                Err(message) => {
                    eprintln!("training_step: step {step} on the GPU failed: {message}");
                    return ExitCode::from(1);
                }
            },
        };
        let loss = 2.0 / f64::from(step + 1) + (out % 100) as f64 / 10_000.0;
        let rate = f64::from(step) / start.elapsed().as_secs_f64();
        println!("step {step}/{} · {rate:.1}it/s · loss {loss:.4}", phases.steps);
    }
    let _ = loader.join();
    let total = start.elapsed();
    let share = waited.as_secs_f64() / total.as_secs_f64().max(f64::EPSILON) * 100.0;
    println!(
        "done: {} steps in {:.2} s; the step waited for data {share:.0} % of the time ({})",
        phases.steps,
        total.as_secs_f64(),
        if share > 50.0 { "input-bound" } else { "compute-bound" }
    );
    ExitCode::SUCCESS
}

/// The CUDA driver API, loaded at run time: no toolkit, no build-time link to the driver.
mod cuda {
    use super::*;

    type CuResult = c_int;
    type Context = *mut c_void;
    type Module = *mut c_void;
    type Function = *mut c_void;
    type DevicePtr = u64;

    /// `CU_DEVICE_ATTRIBUTE_CLOCK_RATE` (kHz) and `..._MULTIPROCESSOR_COUNT`.
    const ATTRIBUTE_CLOCK_RATE: c_int = 13;
    const ATTRIBUTE_MULTIPROCESSOR_COUNT: c_int = 16;
    /// `CU_CTX_SCHED_BLOCKING_SYNC`: a synchronizing host thread sleeps instead of spinning, so
    /// a GPU-bound loop does not also look CPU-bound.
    const CTX_SCHED_BLOCKING_SYNC: c_uint = 0x4;
    /// Threads per block.
    const THREADS: c_uint = 256;

    /// A kernel that keeps its SM busy until `cycles` SM clock cycles have passed. Written for
    /// an old target, so the driver JIT-compiles it for whatever GPU is here.
    const PTX: &CStr = c"
.version 7.0
.target sm_70
.address_size 64

.visible .entry spin(.param .u64 cycles)
{
    .reg .pred %p<2>;
    .reg .b64 %rd<5>;
    ld.param.u64 %rd1, [cycles];
    mov.u64 %rd2, %clock64;
$Lspin:
    mov.u64 %rd3, %clock64;
    sub.s64 %rd4, %rd3, %rd2;
    setp.lt.s64 %p1, %rd4, %rd1;
    @%p1 bra $Lspin;
    ret;
}
";

    /// The driver's entry points this example uses.
    struct Api {
        init: unsafe extern "C" fn(c_uint) -> CuResult,
        device_get_count: unsafe extern "C" fn(*mut c_int) -> CuResult,
        device_get: unsafe extern "C" fn(*mut c_int, c_int) -> CuResult,
        device_get_attribute: unsafe extern "C" fn(*mut c_int, c_int, c_int) -> CuResult,
        device_get_name: unsafe extern "C" fn(*mut c_char, c_int, c_int) -> CuResult,
        ctx_create: unsafe extern "C" fn(*mut Context, c_uint, c_int) -> CuResult,
        ctx_set_current: unsafe extern "C" fn(Context) -> CuResult,
        ctx_synchronize: unsafe extern "C" fn() -> CuResult,
        module_load_data: unsafe extern "C" fn(*mut Module, *const c_void) -> CuResult,
        module_get_function: unsafe extern "C" fn(*mut Function, Module, *const c_char) -> CuResult,
        mem_alloc: unsafe extern "C" fn(*mut DevicePtr, usize) -> CuResult,
        memcpy_htod: unsafe extern "C" fn(DevicePtr, *const c_void, usize) -> CuResult,
        #[allow(clippy::type_complexity)]
        launch_kernel: unsafe extern "C" fn(
            Function,
            c_uint,
            c_uint,
            c_uint,
            c_uint,
            c_uint,
            c_uint,
            c_uint,
            *mut c_void,
            *mut *mut c_void,
            *mut *mut c_void,
        ) -> CuResult,
        get_error_string: unsafe extern "C" fn(CuResult, *mut *const c_char) -> CuResult,
    }

    /// The last `dlerror` message.
    fn dl_error() -> String {
        // SAFETY: dlerror returns NULL or a NUL-terminated string owned by libc.
        let message = unsafe { libc::dlerror() };
        if message.is_null() {
            "unknown error".to_string()
        } else {
            // SAFETY: non-null, NUL-terminated (above).
            unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned()
        }
    }

    /// A symbol's address as the function pointer type `F`.
    ///
    /// # Safety
    /// `F` must be an `extern "C" fn` type matching the symbol's C signature.
    unsafe fn function<F: Copy>(address: *mut c_void) -> F {
        assert_eq!(std::mem::size_of::<F>(), std::mem::size_of::<*mut c_void>());
        // SAFETY: same size (checked), and the caller vouches for the signature.
        unsafe { std::mem::transmute_copy(&address) }
    }

    impl Api {
        /// Loads `libcuda.so.1` (or `TRAINING_STEP_CUDA_LIB`) and its symbols.
        fn load() -> Result<Self, String> {
            let name = std::env::var("TRAINING_STEP_CUDA_LIB").unwrap_or_else(|_| "libcuda.so.1".to_string());
            let c_name = std::ffi::CString::new(name.clone()).map_err(|_| format!("bad library name {name:?}"))?;
            // SAFETY: a valid C string; the handle is kept for the life of the process.
            let handle = unsafe { libc::dlopen(c_name.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
            if handle.is_null() {
                return Err(format!(
                    "cannot load the NVIDIA driver's {name} ({}): this needs a machine with an NVIDIA GPU and its \
                     driver installed (no CUDA toolkit needed); run with --device cpu elsewhere",
                    dl_error()
                ));
            }
            let symbol = |symbol: &CStr| -> Result<*mut c_void, String> {
                // SAFETY: `handle` is a live dlopen handle and `symbol` a C string.
                let found = unsafe { libc::dlsym(handle, symbol.as_ptr()) };
                if found.is_null() {
                    Err(format!("{name} lacks {} (a driver too old?)", symbol.to_string_lossy()))
                } else {
                    Ok(found)
                }
            };
            macro_rules! load {
                ($name:literal) => {
                    // SAFETY: the symbol is the driver API function of that name, whose C
                    // signature the field's type repeats.
                    unsafe { function(symbol($name)?) }
                };
            }
            Ok(Self {
                init: load!(c"cuInit"),
                device_get_count: load!(c"cuDeviceGetCount"),
                device_get: load!(c"cuDeviceGet"),
                device_get_attribute: load!(c"cuDeviceGetAttribute"),
                device_get_name: load!(c"cuDeviceGetName"),
                ctx_create: load!(c"cuCtxCreate_v2"),
                ctx_set_current: load!(c"cuCtxSetCurrent"),
                ctx_synchronize: load!(c"cuCtxSynchronize"),
                module_load_data: load!(c"cuModuleLoadData"),
                module_get_function: load!(c"cuModuleGetFunction"),
                mem_alloc: load!(c"cuMemAlloc_v2"),
                memcpy_htod: load!(c"cuMemcpyHtoD_v2"),
                launch_kernel: load!(c"cuLaunchKernel"),
                get_error_string: load!(c"cuGetErrorString"),
            })
        }

        /// `Ok` for CUDA_SUCCESS, else the driver's words for `code` with what was being done.
        fn check(&self, code: CuResult, doing: &str) -> Result<(), String> {
            if code == 0 {
                return Ok(());
            }
            let mut text: *const c_char = std::ptr::null();
            // SAFETY: the driver writes a pointer to a static string or leaves it NULL.
            unsafe { (self.get_error_string)(code, &mut text) };
            let words = if text.is_null() {
                "unknown error".to_string()
            } else {
                // SAFETY: a static NUL-terminated string of the driver.
                unsafe { CStr::from_ptr(text) }.to_string_lossy().into_owned()
            };
            Err(format!("{doing} failed: CUDA error {code} ({words})"))
        }
    }

    /// The GPUs held and the kernel to run on the first.
    pub struct Gpu {
        api: Api,
        contexts: Vec<Context>,
        spin: Function,
        blocks: c_uint,
        clock_khz: u64,
        name: String,
        buffer: DevicePtr,
        batch: Vec<u8>,
    }

    impl Gpu {
        /// Loads the driver, holds a context on each of the first `gpus` GPUs, JIT-compiles the
        /// kernel on the first and gives it a `batch_bytes` buffer.
        pub fn open(gpus: u32, blocks: u32, batch_bytes: usize) -> Result<Self, String> {
            let api = Api::load()?;
            // SAFETY (this block): every call is a driver API function with pointers to live
            // locals of the types it writes.
            unsafe {
                api.check((api.init)(0), "cuInit")?;
                let mut count = 0;
                api.check((api.device_get_count)(&mut count), "cuDeviceGetCount")?;
                if count < 1 {
                    return Err("the driver sees no GPU".to_string());
                }
                let wanted = c_int::try_from(gpus).unwrap_or(c_int::MAX);
                if wanted > count {
                    return Err(format!("--gpus {gpus}, but the driver sees {count}"));
                }
                let mut contexts = Vec::new();
                for ordinal in (0..wanted).rev() {
                    let mut device = 0;
                    api.check((api.device_get)(&mut device, ordinal), "cuDeviceGet")?;
                    let mut context = std::ptr::null_mut();
                    api.check(
                        (api.ctx_create)(&mut context, CTX_SCHED_BLOCKING_SYNC, device),
                        "cuCtxCreate",
                    )?;
                    contexts.push(context);
                }
                // Created last, GPU 0's context is current; the work runs there.
                contexts.reverse();
                let mut device = 0;
                api.check((api.device_get)(&mut device, 0), "cuDeviceGet")?;
                let attribute = |attribute: c_int, what: &str| -> Result<c_int, String> {
                    let mut value = 0;
                    api.check((api.device_get_attribute)(&mut value, attribute, device), what)?;
                    Ok(value)
                };
                let clock_khz = u64::try_from(attribute(ATTRIBUTE_CLOCK_RATE, "reading the SM clock")?).unwrap_or(1);
                let sms = c_uint::try_from(attribute(ATTRIBUTE_MULTIPROCESSOR_COUNT, "counting the SMs")?).unwrap_or(1);
                let mut name = [0 as c_char; 256];
                api.check((api.device_get_name)(name.as_mut_ptr(), 256, device), "cuDeviceGetName")?;
                let name = CStr::from_ptr(name.as_ptr()).to_string_lossy().into_owned();
                let mut module = std::ptr::null_mut();
                api.check(
                    (api.module_load_data)(&mut module, PTX.as_ptr().cast()),
                    "JIT-compiling the kernel (cuModuleLoadData)",
                )?;
                let mut spin = std::ptr::null_mut();
                api.check(
                    (api.module_get_function)(&mut spin, module, c"spin".as_ptr()),
                    "cuModuleGetFunction",
                )?;
                let mut buffer = 0;
                api.check((api.mem_alloc)(&mut buffer, batch_bytes.max(1)), "cuMemAlloc")?;
                Ok(Self {
                    blocks: if blocks == 0 { sms * 4 } else { blocks },
                    api,
                    contexts,
                    spin,
                    clock_khz: clock_khz.max(1),
                    name,
                    buffer,
                    batch: vec![7; batch_bytes.max(1)],
                })
            }
        }

        /// One line for the log: what runs where.
        pub fn describe(&self) -> String {
            format!(
                "cuda: {} ({} GPU{} held), {} blocks of {THREADS} threads per kernel, {} kB per batch",
                self.name,
                self.contexts.len(),
                if self.contexts.len() == 1 { "" } else { "s" },
                self.blocks,
                self.batch.len() / 1024
            )
        }

        /// One step: copies the batch to the device, then keeps the SMs busy for `compute`.
        pub fn step(&mut self, compute: Duration, seed: u64) -> Result<(), String> {
            if let Some(first) = self.batch.first_mut() {
                *first = (seed % 251) as u8;
            }
            let mut cycles = u64::try_from(compute.as_micros()).unwrap_or(u64::MAX) * self.clock_khz / 1000;
            let mut params = [(&mut cycles as *mut u64).cast::<c_void>()];
            // SAFETY: the context and function are live; `params` points at one u64 as the
            // kernel's one parameter; the batch buffer is as large as the device allocation.
            unsafe {
                self.api
                    .check((self.api.ctx_set_current)(self.contexts[0]), "cuCtxSetCurrent")?;
                self.api.check(
                    (self.api.memcpy_htod)(self.buffer, self.batch.as_ptr().cast(), self.batch.len()),
                    "copying the batch (cuMemcpyHtoD)",
                )?;
                self.api.check(
                    (self.api.launch_kernel)(
                        self.spin,
                        self.blocks,
                        1,
                        1,
                        THREADS,
                        1,
                        1,
                        0,
                        std::ptr::null_mut(),
                        params.as_mut_ptr(),
                        std::ptr::null_mut(),
                    ),
                    "cuLaunchKernel",
                )?;
                self.api.check((self.api.ctx_synchronize)(), "cuCtxSynchronize")
            }
        }
    }
}
