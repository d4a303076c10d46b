//! The `extern "C"` functions behind [`crate::export_app!`]: they turn ABI calls into calls on
//! the application's [`App`] and make sure no panic crosses into the host.

use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;

use bytes::Bytes;

use crate::abi::{self, AppConfigV1, AppV1, ChunkV1, HostApp, HostRequest, HostV1, RequestV1, Str};
use crate::logger;
use crate::{App, Chunk, Request, ResponseBody, Settings};

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
}

unsafe extern "C" fn create<A: App>(
    host: *const HostV1,
    config: *const AppConfigV1,
    instance: *mut *mut c_void,
) -> i32 {
    // SAFETY: the host passes its static table and a config valid during this call.
    let (host, config) = unsafe { (&*host, &*config) };
    logger::install(host, config.host_app);
    let _context = logger::enter_app(config.host_app);
    let started = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `config` is valid during `create`.
        let settings = unsafe { Settings::from_abi(config) };
        A::start(&settings)
    }));
    match started {
        Ok(Ok(app)) => {
            let boxed = Box::new(Instance {
                app,
                host,
                host_app: config.host_app,
            });
            // SAFETY: `instance` is the host's out-pointer.
            unsafe { *instance = Box::into_raw(boxed).cast() };
            0
        }
        Ok(Err(error)) => {
            logger::emit(
                abi::LOG_ERROR,
                &format!("application failed to start: {error}"),
            );
            FAILED
        }
        Err(_) => FAILED, // the panic hook has logged it
    }
}

unsafe extern "C" fn handle<A: App>(
    instance: *const c_void,
    request: *const RequestV1,
    body: *mut *mut c_void,
) -> i32 {
    // SAFETY: the host passes an instance `create` returned, a request valid during this call
    // and a writable out-pointer.
    let (instance, request) = unsafe {
        *body = ptr::null_mut();
        (&*instance.cast::<Instance<A>>(), &*request)
    };
    let _context = logger::enter_request(request.host_request);
    let answered = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `request` comes from the host for this call.
        let mut req = unsafe { Request::from_abi(request, instance.host) };
        instance.app.handle(&mut req)
    }));
    let response = match answered {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => {
            logger::emit(abi::LOG_ERROR, &format!("request failed: {error}"));
            return FAILED;
        }
        Err(_) => return FAILED,
    };
    let (status, headers, response_body) = response.into_parts();
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
    if !matches!(response_body, ResponseBody::Empty) {
        let state = Box::new(BodyState {
            body: response_body,
            current: Bytes::new(),
            host_request: request.host_request,
        });
        // SAFETY: the host's out-pointer; it hands the body back through `body_close`.
        unsafe { *body = Box::into_raw(state).cast() };
    }
    0
}

unsafe extern "C" fn body_next(body: *mut c_void, chunk: *mut ChunkV1) -> i32 {
    // SAFETY: the host passes a body `handle` returned and not yet closed.
    let state = unsafe { &mut *body.cast::<BodyState>() };
    let _context = logger::enter_request(state.host_request);
    let next = catch_unwind(AssertUnwindSafe(|| match &mut state.body {
        ResponseBody::Empty => None,
        ResponseBody::Full(bytes) => {
            let bytes = std::mem::take(bytes);
            state.body = ResponseBody::Empty;
            Some(Ok(Chunk::Data(bytes)))
        }
        ResponseBody::Stream(chunks) => chunks.next(),
    }));
    let result = match next {
        Ok(None) => abi::BODY_END,
        Ok(Some(Ok(Chunk::Flush))) => abi::BODY_FLUSH,
        Ok(Some(Ok(Chunk::Data(bytes)))) => {
            state.current = bytes;
            abi::BODY_DATA
        }
        Ok(Some(Err(error))) => {
            logger::emit(abi::LOG_ERROR, &format!("response body failed: {error}"));
            abi::BODY_ERROR
        }
        Err(_) => abi::BODY_ERROR,
    };
    // SAFETY: the host's out-pointer; `current` stays alive until the next call.
    unsafe {
        *chunk = ChunkV1 {
            data: state.current.as_ptr(),
            len: if result == abi::BODY_DATA {
                state.current.len()
            } else {
                0
            },
        };
    }
    result
}

unsafe extern "C" fn body_close(body: *mut c_void) {
    // SAFETY: the host closes each body `handle` returned exactly once.
    let state = unsafe { Box::from_raw(body.cast::<BodyState>()) };
    let _context = logger::enter_request(state.host_request);
    // Dropping runs the application's clean-up; it must not unwind into the host.
    let _ = catch_unwind(AssertUnwindSafe(move || drop(state)));
}

unsafe extern "C" fn destroy<A: App>(instance: *mut c_void) {
    // SAFETY: the host destroys each instance `create` returned exactly once, after its last
    // request.
    let instance = unsafe { Box::from_raw(instance.cast::<Instance<A>>()) };
    let _context = logger::enter_app(instance.host_app);
    let _ = catch_unwind(AssertUnwindSafe(move || drop(instance)));
}
