//! The host side of the application ABI (`rustapp::abi`): loading application libraries,
//! creating and calling instances, the functions the host offers them, and the rules a
//! response head must follow. The same in embedded mode and in a daemon: only the request
//! state behind the ABI's handles differs ([`RequestState`], [`InstanceContext`]).

mod answer;
mod embedded_context;
mod exchange;
mod forwarded;
mod head;
mod host_table;
mod instance;
mod slot;
mod upgrade;
mod users;
mod whole_body;

pub(crate) use answer::{Failure, answer};
pub(crate) use embedded_context::{AppContext, HOST_V1};
pub(crate) use exchange::Exchange;
pub(crate) use head::{HeadBuilder, HeaderUse, ResponseHead, SWITCHING_PROTOCOLS, check_trailer};
pub(crate) use host_table::{InstanceContext, RequestState, apache_level, host_table};
pub(crate) use instance::{AppInstance, BodyPiece, ResponseBody};
pub(crate) use rustapp::loader::load_library;
pub(crate) use slot::AppSlot;
pub(crate) use upgrade::socket_pair;
pub(crate) use users::{StoreAnswer, UserQuestion};
pub(crate) use whole_body::WholeBodySlot;
