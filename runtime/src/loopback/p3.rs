//! WASI 0.3's `wasi:sockets/types`: wasmtime-wasi's, with the functions that take or give an
//! address (`bind`, `connect`, the address getters) and the socket's drop linked over it to
//! translate addresses by the rules of `NetState`, as the 0.2 layer does.

use std::net::SocketAddr;

use wasmtime::StoreContextMut;
use wasmtime::component::{Accessor, Linker, Resource, ResourceType};
use wasmtime_wasi::p3::bindings::sockets::types::{
    ErrorCode, HostTcpSocket, HostTcpSocketWithStore, IpSocketAddress,
};
use wasmtime_wasi::p3::sockets::SocketResult;
use wasmtime_wasi::sockets::{TcpSocket, WasiSockets, WasiSocketsCtxView};

use super::Refusal;
use crate::store::Ctx;

const TYPES: &str = "wasi:sockets/types@0.3.0";

/// Links the translating functions over wasmtime-wasi's (call after
/// `wasmtime_wasi::p3::add_to_linker`).
pub(crate) fn add_to_linker(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let linked = link(linker);
    linker.allow_shadowing(false);
    linked
}

fn link(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
    let mut types = linker.instance(TYPES)?;
    types.resource(
        "tcp-socket",
        ResourceType::host::<TcpSocket>(),
        |mut store, rep| {
            let ctx = store.data_mut();
            ctx.net.forget(rep);
            HostTcpSocket::drop(&mut sockets(ctx), Resource::new_own(rep))
        },
    )?;
    types.func_wrap_async(
        "[method]tcp-socket.bind",
        |mut store: StoreContextMut<'_, Ctx>,
         (socket, wanted): (Resource<TcpSocket>, IpSocketAddress)| {
            Box::new(async move { Ok((bind(store.data_mut(), socket, wanted.into()).await?,)) })
        },
    )?;
    types.func_wrap_concurrent(
        "[method]tcp-socket.connect",
        |accessor: &Accessor<Ctx>, (socket, wanted): (Resource<TcpSocket>, IpSocketAddress)| {
            Box::pin(async move { Ok((connect(accessor, socket, wanted.into()).await?,)) })
        },
    )?;
    types.func_wrap(
        "[method]tcp-socket.get-local-address",
        |mut store: StoreContextMut<'_, Ctx>, (socket,): (Resource<TcpSocket>,)| {
            let ctx = store.data_mut();
            let real = HostTcpSocket::get_local_address(&mut sockets(ctx), borrow(&socket));
            let seen = real.map(|real| {
                IpSocketAddress::from(ctx.net.local_address(socket.rep(), real.into()))
            });
            Ok((code(seen)?,))
        },
    )?;
    types.func_wrap(
        "[method]tcp-socket.get-remote-address",
        |mut store: StoreContextMut<'_, Ctx>, (socket,): (Resource<TcpSocket>,)| {
            let ctx = store.data_mut();
            let seen = match ctx.net.remote_address(socket.rep()) {
                Some(addr) => Ok(addr.into()),
                None => HostTcpSocket::get_remote_address(&mut sockets(ctx), socket),
            };
            Ok((code(seen)?,))
        },
    )?;
    Ok(())
}

async fn bind(
    ctx: &mut Ctx,
    socket: Resource<TcpSocket>,
    wanted: SocketAddr,
) -> wasmtime::Result<Result<(), ErrorCode>> {
    let real = match ctx.net.bind_target(wanted) {
        Ok(real) => real,
        Err(refusal) => return Ok(Err(refusal.into())),
    };
    let mut view = sockets(ctx);
    if let Err(e) = HostTcpSocket::bind(&mut view, borrow(&socket), real.into()).await {
        return Ok(Err(e.downcast()?));
    }
    let real = match HostTcpSocket::get_local_address(&mut view, borrow(&socket)) {
        Ok(real) => real.into(),
        Err(e) => return Ok(Err(e.downcast()?)),
    };
    ctx.net.bound(socket.rep(), wanted, real);
    Ok(Ok(()))
}

async fn connect(
    accessor: &Accessor<Ctx>,
    socket: Resource<TcpSocket>,
    wanted: SocketAddr,
) -> wasmtime::Result<Result<(), ErrorCode>> {
    let target =
        accessor.with(|mut access| access.data_mut().net.connect_target(socket.rep(), wanted));
    let real = match target {
        Ok(real) => real,
        Err(refusal) => return Ok(Err(refusal.into())),
    };
    let accessor = accessor.with_getter::<WasiSockets>(sockets);
    code(WasiSockets::connect(&accessor, socket, real.into()).await)
}

/// wasmtime-wasi's view of a store's sockets.
fn sockets(ctx: &mut Ctx) -> WasiSocketsCtxView<'_> {
    WasiSocketsCtxView {
        ctx: ctx.wasi.sockets(),
        table: &mut ctx.table,
    }
}

fn borrow(socket: &Resource<TcpSocket>) -> Resource<TcpSocket> {
    Resource::new_borrow(socket.rep())
}

/// A socket result as the guest gets it: an error code, or a trap for anything else.
fn code<T>(result: SocketResult<T>) -> wasmtime::Result<Result<T, ErrorCode>> {
    match result {
        Ok(value) => Ok(Ok(value)),
        Err(e) => Ok(Err(e.downcast()?)),
    }
}

impl From<Refusal> for ErrorCode {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::AccessDenied(_) => ErrorCode::AccessDenied,
            Refusal::AddressInUse => ErrorCode::AddressInUse,
            Refusal::ConnectionRefused(_) => ErrorCode::ConnectionRefused,
        }
    }
}
