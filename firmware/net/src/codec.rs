//! The request-response codec: one frame per request and per response, with the caps of the
//! protocol it serves.

use std::{io, marker::PhantomData};

use futures::{AsyncRead, AsyncWrite};
use libp2p::{request_response, StreamProtocol};
use serde::{de::DeserializeOwned, Serialize};

use crate::{frame, limits::MessageLimits};

/// Codec for one protocol's `Req`/`Resp` pair.
pub(crate) struct FrameCodec<Req, Resp> {
    limits: MessageLimits,
    _types: PhantomData<fn() -> (Req, Resp)>,
}

impl<Req, Resp> FrameCodec<Req, Resp> {
    pub(crate) fn new(limits: MessageLimits) -> Self {
        Self { limits, _types: PhantomData }
    }
}

impl<Req, Resp> Clone for FrameCodec<Req, Resp> {
    fn clone(&self) -> Self {
        Self::new(self.limits)
    }
}

fn name(p: &StreamProtocol) -> &'static str {
    match p.as_ref() {
        "/bunker/offer/1" => "offer",
        "/bunker/contract/2" => "contract",
        "/bunker/holdings/1" => "holdings",
        "/bunker/audit/1" => "audit",
        "/bunker/manifest/1" => "manifest",
        "/bunker/recover/1" => "recover",
        "/bunker/release/1" => "release",
        _ => "bunker message",
    }
}

impl<Req, Resp> request_response::Codec for FrameCodec<Req, Resp>
where
    Req: Serialize + DeserializeOwned + Send + 'static,
    Resp: Serialize + DeserializeOwned + Send + 'static,
{
    type Protocol = StreamProtocol;
    type Request = Req;
    type Response = Resp;

    async fn read_request<T>(&mut self, p: &StreamProtocol, io: &mut T) -> io::Result<Req>
    where
        T: AsyncRead + Unpin + Send,
    {
        Ok(frame::read_frame(io, name(p), self.limits.max_request).await?)
    }

    async fn read_response<T>(&mut self, p: &StreamProtocol, io: &mut T) -> io::Result<Resp>
    where
        T: AsyncRead + Unpin + Send,
    {
        Ok(frame::read_frame(io, name(p), self.limits.max_response).await?)
    }

    async fn write_request<T>(&mut self, p: &StreamProtocol, io: &mut T, req: Req) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        // Encode before the first await: the message need not be Sync to cross it.
        let bytes = frame::encode(name(p), &req, self.limits.max_request)?;
        Ok(frame::write_encoded(io, name(p), &bytes).await?)
    }

    async fn write_response<T>(&mut self, p: &StreamProtocol, io: &mut T, res: Resp) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let bytes = frame::encode(name(p), &res, self.limits.max_response)?;
        Ok(frame::write_encoded(io, name(p), &bytes).await?)
    }
}
