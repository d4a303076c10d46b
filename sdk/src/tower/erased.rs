//! The deployed service behind one type, whatever its own: requests in, responses with
//! `Bytes` bodies and [`Error`]s out, so the exported app type can be named.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use http_body::Body as HttpBody;
use tower_service::Service;

use super::body::Body;
use crate::Error;

pub(super) type BoxBody = Pin<Box<dyn HttpBody<Data = Bytes, Error = Error> + Send>>;
pub(super) type BoxResponseFuture =
    Pin<Box<dyn Future<Output = Result<http::Response<BoxBody>, Error>>>>;

/// The service behind its concrete type, so the exported app type can be named.
pub(super) trait ErasedService: Send + Sync {
    fn call_erased(&self, request: http::Request<Body>) -> BoxResponseFuture;
}

impl<S, B> ErasedService for S
where
    S: Service<http::Request<Body>, Response = http::Response<B>> + Clone + Send + Sync + 'static,
    S::Error: Into<Error>,
    S::Future: 'static,
    B: HttpBody + Send + 'static,
    B::Data: Send,
    B::Error: Into<Error>,
{
    fn call_erased(&self, request: http::Request<Body>) -> BoxResponseFuture {
        // tower's convention: a clone per request, made ready, then called.
        let mut service = self.clone();
        Box::pin(async move {
            poll_fn(|cx| Service::poll_ready(&mut service, cx))
                .await
                .map_err(Into::<Error>::into)?;
            let response = Service::call(&mut service, request)
                .await
                .map_err(Into::<Error>::into)?;
            Ok(response.map(|body| Box::pin(IntoBytes(body)) as BoxBody))
        })
    }
}

/// Adapts any body's data and error types to `Bytes` and [`Error`].
struct IntoBytes<B>(B);

impl<B> HttpBody for IntoBytes<B>
where
    B: HttpBody,
    B::Error: Into<Error>,
{
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Error>>> {
        // SAFETY: structural pinning of the only field.
        let inner = unsafe { self.map_unchecked_mut(|s| &mut s.0) };
        inner.poll_frame(cx).map(|frame| {
            frame.map(|f| {
                f.map(|frame| frame.map_data(|mut data| data.copy_to_bytes(data.remaining())))
                    .map_err(Into::into)
            })
        })
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }
}
