//! Configuration directives: the module's directive table, and the functions Apache calls for
//! each directive, which hand its arguments to the [`Module`].

use std::ffi::{CStr, c_char, c_int, c_void};
use std::ptr;

use super::cmd::{Args, Cmd};
use super::entry::guard;
use super::module::Module;
use super::sys;

/// Where a directive may appear.
#[derive(Clone, Copy)]
pub(crate) struct Context(c_int);

impl Context {
    /// The main server and virtual hosts.
    pub(crate) const SERVER: Context = Context(sys::RSRC_CONF);
    /// `<Directory>`, `<Location>` and `<Files>` sections.
    pub(crate) const SECTION: Context = Context(sys::ACCESS_CONF);
    /// `.htaccess` files where `AllowOverride AuthConfig` allows.
    pub(crate) const HTACCESS_AUTHCONFIG: Context = Context(sys::OR_AUTHCFG);

    pub(crate) const fn and(self, other: Context) -> Context {
        Context(self.0 | other.0)
    }
}

/// How a directive takes its arguments; Apache checks their count.
#[derive(Clone, Copy)]
pub(crate) enum Takes {
    One,
    Two,
    /// Any number of words.
    Words,
    /// `On` or `Off`.
    Flag,
}

/// The module's directives, ending with the entry Apache stops at.
#[repr(transparent)]
pub(crate) struct CommandTable<const N: usize>([sys::command_rec; N]);

// SAFETY: immutable static data (string and function pointers).
unsafe impl<const N: usize> Sync for CommandTable<N> {}

impl<const N: usize> CommandTable<N> {
    /// The table of `directives`; the last entry must be [`END_OF_TABLE`].
    pub(crate) const fn new(directives: [sys::command_rec; N]) -> CommandTable<N> {
        CommandTable(directives)
    }

    pub(super) const fn as_ptr(&self) -> *const sys::command_rec {
        self.0.as_ptr()
    }
}

/// The entry of directive `name`, which Apache hands to `M::directive` with `id`.
pub(crate) const fn directive<M: Module>(
    name: &'static CStr,
    takes: Takes,
    context: Context,
    id: usize,
    help: &'static CStr,
) -> sys::command_rec {
    let (func, args_how) = match takes {
        Takes::One => (
            sys::cmd_func {
                take1: Some(take_one::<M>),
            },
            sys::cmd_how_TAKE1,
        ),
        Takes::Two => (
            sys::cmd_func {
                take2: Some(take_two::<M>),
            },
            sys::cmd_how_TAKE2,
        ),
        Takes::Words => (
            sys::cmd_func {
                take_argv: Some(take_words::<M>),
            },
            sys::cmd_how_TAKE_ARGV,
        ),
        Takes::Flag => (
            sys::cmd_func {
                flag: Some(take_flag::<M>),
            },
            sys::cmd_how_FLAG,
        ),
    };
    sys::command_rec {
        name: name.as_ptr(),
        func,
        cmd_data: ptr::without_provenance_mut(id),
        req_override: context.0,
        args_how,
        errmsg: help.as_ptr(),
    }
}

pub(crate) const END_OF_TABLE: sys::command_rec = sys::command_rec {
    name: ptr::null(),
    func: sys::cmd_func { no_args: None },
    cmd_data: ptr::null_mut(),
    req_override: 0,
    args_how: 0,
    errmsg: ptr::null(),
};

/// What a directive trampoline answers when the module panicked (the panic hook logged it).
const PANICKED: &CStr =
    c"mod_rustapp failed internally while reading this directive (see the error log)";

/// Runs the module's handler for one directive, turning its error into the message
/// `apache2 -t` prints, and a panic into a fixed one.
///
/// # Safety
/// `cmd` and `dir` must be what Apache passes a directive of module `M`.
unsafe fn run<'a, M: Module>(
    cmd: *mut sys::cmd_parms,
    dir: *mut c_void,
    args: impl FnOnce() -> Result<Args<'a>, String>,
) -> *const c_char {
    guard(PANICKED.as_ptr(), || {
        // SAFETY: per the contract; `dir` is the record our create_dir_config made.
        let (cmd, dir) = unsafe { (Cmd::from_raw(cmd), &mut *dir.cast::<M::DirConfig>()) };
        let id = cmd.parms().info as usize;
        let outcome = args()
            .map_err(|e| format!("{}: {e}", cmd.name()))
            .and_then(|args| M::directive(id, cmd, dir, args));
        match outcome {
            Ok(()) => ptr::null(),
            Err(message) => cmd.pool().c_string(message.as_bytes()).as_ptr(),
        }
    })
}

unsafe extern "C" fn take_one<M: Module>(
    cmd: *mut sys::cmd_parms,
    dir: *mut c_void,
    one: *const c_char,
) -> *const c_char {
    // SAFETY: Apache's arguments for a TAKE1 directive of this module.
    unsafe { run::<M>(cmd, dir, || Ok(Args::Words(vec![argument(one)?]))) }
}

unsafe extern "C" fn take_two<M: Module>(
    cmd: *mut sys::cmd_parms,
    dir: *mut c_void,
    one: *const c_char,
    two: *const c_char,
) -> *const c_char {
    // SAFETY: Apache's arguments for a TAKE2 directive of this module.
    unsafe {
        run::<M>(cmd, dir, || {
            Ok(Args::Words(vec![argument(one)?, argument(two)?]))
        })
    }
}

unsafe extern "C" fn take_words<M: Module>(
    cmd: *mut sys::cmd_parms,
    dir: *mut c_void,
    argc: c_int,
    argv: *const *mut c_char,
) -> *const c_char {
    // SAFETY: Apache's arguments for a TAKE_ARGV directive of this module: `argc` strings.
    unsafe {
        run::<M>(cmd, dir, || {
            let count = usize::try_from(argc).unwrap_or(0);
            (0..count)
                .map(|i| argument(*argv.add(i)))
                .collect::<Result<_, _>>()
                .map(Args::Words)
        })
    }
}

unsafe extern "C" fn take_flag<M: Module>(
    cmd: *mut sys::cmd_parms,
    dir: *mut c_void,
    on: c_int,
) -> *const c_char {
    // SAFETY: Apache's arguments for a FLAG directive of this module.
    unsafe { run::<M>(cmd, dir, || Ok(Args::Flag(on != 0))) }
}

/// A directive argument as text; Apache's strings live as long as the directive is read.
fn argument<'a>(arg: *const c_char) -> Result<&'a str, String> {
    if arg.is_null() {
        return Err("missing argument".to_owned());
    }
    // SAFETY: Apache passes NUL-terminated argument strings.
    unsafe { CStr::from_ptr(arg) }
        .to_str()
        .map_err(|_| "arguments must be UTF-8 text".to_owned())
}
