//! The `extern "C"` functions behind [`crate::export_app!`]: they turn ABI calls into calls on
//! the application's [`App`] and make sure no panic crosses into the host.

use std::ffi::c_void;
use std::ptr;
use std::sync::Arc;
use std::task::{Poll, Waker};

use bytes::Bytes;

use crate::abi::{
    self, AppConfigV1, AppV1, AuthCheckV1, ChunkV1, HostApp, HostRequest, HostV1, ReceiveFn,
    RequestV1, Str, WHOLE_BODY_MAX,
};
use crate::guard::guard;
use crate::logger;
use crate::ready::ReadyFd;
use crate::{
    App, Chunk, Error, PasswordCheck, Request, ResponseBody, Settings, Unsupported, UserStore,
};

/// Failure returned to the host by `create` and `handle`.
const FAILED: i32 = 1;

/// The function table for application type `A`.
pub const fn table<A: App>(name: &'static str) -> AppV1 {
    AppV1 {
        abi_major: abi::ABI_MAJOR,
        abi_minor: abi::ABI_MINOR,
        size: size_of::<AppV1>() as u32,
        name: Str::from_static(name),
        create: Some(create::<A>),
        handle: Some(handle::<A>),
        body_next: Some(body_next),
        body_close: Some(body_close),
        destroy: Some(destroy::<A>),
        check_password: Some(check_password::<A>),
        groups_for_user: Some(groups_for_user::<A>),
        realm_hash: Some(realm_hash::<A>),
        body_ready_fd: Some(body_ready_fd),
    }
}

struct Instance<A> {
    app: A,
    host: &'static HostV1,
    host_app: *const HostApp,
}

/// A response body while the host sends it.
struct BodyState {
    body: ResponseBody,
    /// The chunk handed to the host last; kept alive until the next call.
    current: Bytes,
    host_request: *const HostRequest,
    host: &'static HostV1,
    /// Whether the host takes `BODY_PENDING` (else a waiting body blocks its call).
    host_accepts_pending: bool,
    /// What a waiting body wakes, made when it first waits.
    ready: Option<(Arc<ReadyFd>, Waker)>,
}

impl BodyState {
    /// The next chunk of a body that may wait: pending, or (for a host that does not accept
    /// that) after waiting here.
    fn poll_next(&mut self) -> Result<Poll<Option<Result<Chunk, Error>>>, Error> {
        let ResponseBody::Polled(body) = &mut self.body else {
            unreachable!("only polled bodies wait");
        };
        let (ready, waker) = self.ready.get_or_insert_with(|| {
            let ready = ReadyFd::new();
            let waker = ready.waker();
            (ready, waker)
        });
        let cannot_wait = |e: std::io::Error| format!("cannot wait for the body: {e}");
        let mut polled_again = 0;
        loop {
            ready.drain();
            match body.poll_next(waker) {
                // It woke itself while polled: again at once (a few times in a row, so that
                // the host still sees a body that keeps doing so).
                Poll::Pending if ready.woken() && polled_again < crate::ready::POLLED_AGAIN => {
                    polled_again += 1;
                }
                Poll::Pending if !self.host_accepts_pending => ready.wait().map_err(cannot_wait)?,
                Poll::Pending => {
                    // The host asks for the descriptor next.
                    ready.arm().map_err(cannot_wait)?;
                    return Ok(Poll::Pending);
                }
                polled => return Ok(polled),
            }
        }
    }
}

unsafe extern "C" fn create<A: App>(
    host: *const HostV1,
    config: *const AppConfigV1,
    instance: *mut *mut c_void,
) -> i32 {
    guard(FAILED, || {
        // SAFETY: the host passes its static table and a config valid during this call.
        let (host, config) = unsafe { (&*host, &*config) };
        logger::install(host, config.host_app);
        let _context = logger::enter_app(config.host_app);
        // SAFETY: `config` is valid during `create`.
        let settings = unsafe { Settings::from_abi(config) };
        match A::start(&settings) {
            Ok(app) => {
                let boxed = Box::new(Instance {
                    app,
                    host,
                    host_app: config.host_app,
                });
                // SAFETY: `instance` is the host's out-pointer.
                unsafe { *instance = Box::into_raw(boxed).cast() };
                0
            }
            Err(error) => {
                logger::emit(
                    abi::LOG_ERROR,
                    &format!("application failed to start: {error}"),
                );
                FAILED
            }
        }
    })
}

unsafe extern "C" fn handle<A: App>(
    instance: *const c_void,
    request: *const RequestV1,
    body: *mut *mut c_void,
) -> i32 {
    guard(FAILED, || {
        // SAFETY: the host passes an instance `create` returned, a request valid during this
        // call and a writable out-pointer.
        let (instance, request) = unsafe {
            *body = ptr::null_mut();
            (&*instance.cast::<Instance<A>>(), &*request)
        };
        let _context = logger::enter_request(request.host_request);
        // SAFETY: `request` comes from the host for this call.
        let mut req = unsafe { Request::from_abi(request, instance.host) };
        let response = match instance.app.handle(&mut req) {
            Ok(response) => response,
            Err(error) => {
                logger::emit(abi::LOG_ERROR, &format!("request failed: {error}"));
                return FAILED;
            }
        };
        let (status, headers, response_body, trailers) = response.into_answer();
        let host = instance.host;
        // The host validates and copies; a refused value turns the response into a 500 there.
        // SAFETY: host calls with the request handle of this call and borrowed strings.
        unsafe {
            (host.set_status)(request.host_request, u32::from(status));
            for (name, value) in &headers {
                (host.add_header)(
                    request.host_request,
                    Str::from_bytes(name.as_bytes()),
                    Str::from_bytes(value.as_bytes()),
                );
            }
        }
        if let ResponseBody::Full(whole) = &response_body {
            // Most answers are small and complete: handed over now, they need no body calls.
            if let Some(set_body) = host.set_body().filter(|_| whole.len() <= WHOLE_BODY_MAX) {
                // SAFETY: the request handle of this call, and a borrowed string.
                if unsafe { set_body(request.host_request, Str::from_bytes(whole)) } == 0 {
                    // The host sends trailers given during `handle` after the whole body.
                    add_trailers(host, request.host_request, &trailers);
                    return 0;
                }
            }
        }
        let response_body = response_body.followed_by(trailers);
        if !matches!(response_body, ResponseBody::Empty) {
            let state = Box::new(BodyState {
                body: response_body,
                current: Bytes::new(),
                host_request: request.host_request,
                host,
                host_accepts_pending: host.accepts_pending(),
                ready: None,
            });
            // SAFETY: the host's out-pointer; it hands the body back through `body_close`.
            unsafe { *body = Box::into_raw(state).cast() };
        }
        0
    })
}

unsafe extern "C" fn body_next(body: *mut c_void, chunk: *mut ChunkV1) -> i32 {
    guard(abi::BODY_ERROR, || {
        // SAFETY: the host passes a body `handle` returned and not yet closed, and a writable
        // out-pointer.
        let (state, chunk) = unsafe {
            *chunk = ChunkV1 {
                data: ptr::null(),
                len: 0,
            };
            (&mut *body.cast::<BodyState>(), &mut *chunk)
        };
        let _context = logger::enter_request(state.host_request);
        loop {
            let next = match &mut state.body {
                ResponseBody::Empty => None,
                ResponseBody::Full(bytes) => {
                    let bytes = std::mem::take(bytes);
                    state.body = ResponseBody::Empty;
                    Some(Ok(Chunk::Data(bytes)))
                }
                ResponseBody::Stream(chunks) => chunks.next(),
                ResponseBody::Polled(_) => match state.poll_next() {
                    Ok(Poll::Ready(next)) => next,
                    Ok(Poll::Pending) => return state.pending_code(),
                    Err(error) => Some(Err(error)),
                },
            };
            return match next {
                None => abi::BODY_END,
                Some(Ok(Chunk::Flush)) => abi::BODY_FLUSH,
                Some(Ok(Chunk::Trailers(trailers))) => {
                    state.add_trailers(&trailers);
                    continue;
                }
                Some(Ok(Chunk::Data(bytes))) => {
                    state.current = bytes;
                    // `current` stays alive until the next call.
                    *chunk = ChunkV1 {
                        data: state.current.as_ptr(),
                        len: state.current.len(),
                    };
                    abi::BODY_DATA
                }
                Some(Err(error)) => {
                    logger::emit(abi::LOG_ERROR, &format!("response body failed: {error}"));
                    abi::BODY_ERROR
                }
            };
        }
    })
}

impl BodyState {
    /// What a body that has nothing yet answers: it may also wait for request body.
    fn pending_code(&self) -> i32 {
        match &self.body {
            ResponseBody::Polled(body)
                if body.waits_for_request_body() && self.host.has_trailers_and_duplex() =>
            {
                abi::BODY_PENDING_INPUT
            }
            _ => abi::BODY_PENDING,
        }
    }

    fn add_trailers(&self, trailers: &[(crate::response::HeaderText, crate::HeaderBytes)]) {
        add_trailers(self.host, self.host_request, trailers);
    }
}

/// Hands trailers to a host that takes them (ABI 1.4 on).
fn add_trailers(
    host: &HostV1,
    host_request: *const HostRequest,
    trailers: &[(crate::response::HeaderText, crate::HeaderBytes)],
) {
    if trailers.is_empty() {
        return;
    }
    if !host.has_trailers_and_duplex() {
        log::debug!("this host takes no trailers: {} dropped", trailers.len());
        return;
    }
    for (name, value) in trailers {
        // The host checks and logs what it refuses; the response goes on without it.
        // SAFETY: host call with the request handle of this response and borrowed strings.
        unsafe {
            (host.add_trailer)(
                host_request.cast_mut(),
                Str::from_bytes(name.as_bytes()),
                Str::from_bytes(value.as_bytes()),
            );
        }
    }
}

unsafe extern "C" fn body_ready_fd(body: *mut c_void) -> i32 {
    guard(-1, || {
        // SAFETY: the host passes a body `handle` returned and not yet closed.
        let state = unsafe { &*body.cast::<BodyState>() };
        state
            .ready
            .as_ref()
            .and_then(|(ready, _)| ready.raw())
            .unwrap_or(-1)
    })
}

unsafe extern "C" fn body_close(body: *mut c_void) {
    guard((), || {
        // SAFETY: the host closes each body `handle` returned exactly once.
        let state = unsafe { Box::from_raw(body.cast::<BodyState>()) };
        let _context = logger::enter_request(state.host_request);
        // Dropping runs the application's clean-up; a panic in it stops here.
        drop(state);
    })
}

unsafe extern "C" fn destroy<A: App>(instance: *mut c_void) {
    guard((), || {
        // SAFETY: the host destroys each instance `create` returned exactly once, after its
        // last request.
        let instance = unsafe { Box::from_raw(instance.cast::<Instance<A>>()) };
        let _context = logger::enter_app(instance.host_app);
        drop(instance);
    })
}

/// What a user-store question is given, as the application sees it.
struct Question<'q> {
    request: &'q Request<'q>,
    user: &'q str,
    secret: &'q str,
}

/// Runs one user-store question on the instance's [`UserStore`]: `ask` answers with an
/// `AUTH_*` code, handing strings to `receive` first. No panic crosses into the host.
///
/// # Safety
/// The arguments must be those the host passed to one of the `AuthFn` entry points.
unsafe fn ask_users<A: App>(
    instance: *const c_void,
    check: *const AuthCheckV1,
    receive: ReceiveFn,
    context: *mut c_void,
    ask: impl FnOnce(&dyn UserStore, &Question<'_>, &mut dyn FnMut(&str)) -> Result<i32, Error>,
) -> i32 {
    guard(abi::AUTH_ERROR, || {
        // SAFETY: the host passes an instance `create` returned and a check valid for this
        // call, whose request is valid too.
        let (instance, check, raw_request) = unsafe {
            let check = &*check;
            (&*instance.cast::<Instance<A>>(), check, &*check.request)
        };
        let _context = logger::enter_request(raw_request.host_request);
        let answered = (|| {
            let Some(users) = instance.app.users() else {
                return Ok(abi::AUTH_UNSUPPORTED);
            };
            // SAFETY: the strings and request are the host's, valid during this call.
            let (request, user, secret) = unsafe {
                (
                    Request::from_abi(raw_request, instance.host),
                    String::from_utf8_lossy(check.user.as_bytes()),
                    String::from_utf8_lossy(check.secret.as_bytes()),
                )
            };
            let question = Question {
                request: &request,
                user: &user,
                secret: &secret,
            };
            // SAFETY: the host's callback, given strings that live through the call.
            let mut give =
                |value: &str| unsafe { receive(context, Str::from_bytes(value.as_bytes())) };
            ask(users, &question, &mut give)
        })();
        match answered {
            Ok(code) => code,
            Err(error) if error.is::<Unsupported>() => abi::AUTH_UNSUPPORTED,
            Err(error) => {
                logger::emit(abi::LOG_ERROR, &format!("user store failed: {error}"));
                abi::AUTH_ERROR
            }
        }
    })
}

unsafe extern "C" fn check_password<A: App>(
    instance: *const c_void,
    check: *const AuthCheckV1,
    receive: ReceiveFn,
    context: *mut c_void,
) -> i32 {
    // SAFETY: the host's arguments, passed on.
    unsafe {
        ask_users::<A>(instance, check, receive, context, |users, q, give| {
            Ok(match users.check_password(q.request, q.user, q.secret)? {
                PasswordCheck::UnknownUser => abi::AUTH_NO_USER,
                PasswordCheck::Denied => abi::AUTH_DENIED,
                PasswordCheck::Granted => abi::AUTH_OK,
                PasswordCheck::GrantedAs(name) => {
                    give(&name);
                    abi::AUTH_OK
                }
            })
        })
    }
}

unsafe extern "C" fn groups_for_user<A: App>(
    instance: *const c_void,
    check: *const AuthCheckV1,
    receive: ReceiveFn,
    context: *mut c_void,
) -> i32 {
    // SAFETY: the host's arguments, passed on.
    unsafe {
        ask_users::<A>(instance, check, receive, context, |users, q, give| {
            for group in users.groups_for_user(q.request, q.user)? {
                give(&group);
            }
            Ok(abi::AUTH_OK)
        })
    }
}

unsafe extern "C" fn realm_hash<A: App>(
    instance: *const c_void,
    check: *const AuthCheckV1,
    receive: ReceiveFn,
    context: *mut c_void,
) -> i32 {
    // SAFETY: the host's arguments, passed on.
    unsafe {
        ask_users::<A>(instance, check, receive, context, |users, q, give| {
            Ok(match users.realm_hash(q.request, q.user, q.secret)? {
                Some(hash) => {
                    give(&hash);
                    abi::AUTH_OK
                }
                None => abi::AUTH_NO_USER,
            })
        })
    }
}
