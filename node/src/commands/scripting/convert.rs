//! Replies between the command layer and Lua, as redis converts them for a
//! script running in RESP2 (`redisProtocolToLuaType`, `luaReplyToRedisReply`).

use bytes::Bytes;
use mlua::{Lua, Table, Value};

use crate::resp::{format_double, Frame};

/// A command's reply as the Lua value `redis.call` returns. Error replies
/// are handled by the caller (raised or returned as `{err=...}`).
pub fn frame_to_lua(lua: &Lua, frame: Frame) -> mlua::Result<Value> {
    Ok(match frame {
        Frame::Simple(s) => {
            let t = lua.create_table()?;
            t.raw_set("ok", lua.create_string(s.as_bytes())?)?;
            Value::Table(t)
        }
        Frame::Error(e) => Value::Table(error_table(lua, &e)?),
        Frame::Integer(n) => Value::Integer(n as mlua::Integer),
        Frame::Bulk(b) => Value::String(lua.create_string(&b[..])?),
        Frame::Null | Frame::NullArray => Value::Boolean(false),
        Frame::Array(items) | Frame::Set(items) => {
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.into_iter().enumerate() {
                t.raw_set(i + 1, frame_to_lua(lua, item)?)?;
            }
            Value::Table(t)
        }
        Frame::Map(pairs) => {
            let t = lua.create_table_with_capacity(pairs.len() * 2, 0)?;
            let mut i = 1;
            for (k, v) in pairs {
                t.raw_set(i, frame_to_lua(lua, k)?)?;
                t.raw_set(i + 1, frame_to_lua(lua, v)?)?;
                i += 2;
            }
            Value::Table(t)
        }
        Frame::Verbatim(s) => Value::String(lua.create_string(s.as_bytes())?),
        Frame::Double(d) => Value::String(lua.create_string(format_double(d).as_bytes())?),
        Frame::Boolean(b) => Value::Integer(mlua::Integer::from(b)),
    })
}

/// `{err = "<CODE> <message>"}` (redis `luaPushErrorBuff`: a leading `-` is
/// dropped, a message without a code gets `ERR`, trailing newlines go).
pub fn error_table(lua: &Lua, text: &str) -> mlua::Result<Table> {
    let text = text.strip_prefix('-').unwrap_or(text);
    let text = text.trim_end_matches(['\r', '\n']);
    let t = lua.create_table()?;
    t.raw_set("err", lua.create_string(text.as_bytes())?)?;
    Ok(t)
}

/// Deepest table nesting converted: a script may return a table that
/// contains itself (redis stops on its Lua stack limit the same way).
const MAX_DEPTH: usize = 1000;

/// A script's return value as a reply.
pub fn lua_to_frame(value: &Value) -> Frame {
    to_frame(value, 0)
}

fn to_frame(value: &Value, depth: usize) -> Frame {
    if depth > MAX_DEPTH {
        return Frame::error("ERR reached lua stack limit");
    }
    match value {
        Value::String(s) => Frame::Bulk(Bytes::copy_from_slice(&s.as_bytes())),
        Value::Boolean(true) => Frame::Integer(1),
        Value::Boolean(false) | Value::Nil => Frame::Null,
        Value::Integer(n) => Frame::Integer(*n),
        Value::Number(n) => Frame::Integer(*n as i64),
        Value::Table(t) => {
            if let Ok(Value::String(e)) = t.raw_get::<Value>("err") {
                return Frame::Error(String::from_utf8_lossy(&e.as_bytes()).into_owned());
            }
            if let Ok(Value::String(ok)) = t.raw_get::<Value>("ok") {
                return Frame::Simple(String::from_utf8_lossy(&ok.as_bytes()).into_owned());
            }
            let mut items = Vec::new();
            let mut i = 1;
            loop {
                match t.raw_get::<Value>(i) {
                    Ok(Value::Nil) | Err(_) => break,
                    Ok(v) => items.push(to_frame(&v, depth + 1)),
                }
                i += 1;
            }
            Frame::Array(items)
        }
        _ => Frame::Null,
    }
}
