//! EVAL/EVALSHA/SCRIPT and FUNCTION/FCALL on an embedded Lua 5.1.

use bytes::Bytes;

use super::Ctx;
use crate::resp::Frame;

pub(crate) fn eval(_ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Frame {
    Frame::error("ERR not yet")
}
pub(crate) fn fcall(_ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Frame {
    Frame::error("ERR not yet")
}
pub(crate) fn script(_ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Frame {
    Frame::error("ERR not yet")
}
pub(crate) fn function(_ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Frame {
    Frame::error("ERR not yet")
}
