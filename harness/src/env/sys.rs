//! Small OS helpers: running `ip`/`nft`, reading /proc, signalling PIDs we own.

use std::io::Write;
use std::process::{Command, Stdio};

/// A system command that failed.
#[derive(Debug, thiserror::Error)]
pub enum SysError {
    #[error("could not start `{cmd}`: {source}")]
    Spawn {
        cmd: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{cmd}` exited with {status}: {stderr}")]
    Failed {
        cmd: String,
        status: String,
        stderr: String,
    },
}

fn describe(prog: &str, args: &[&str]) -> String {
    let mut s = prog.to_string();
    for a in args {
        s.push(' ');
        s.push_str(a);
    }
    s
}

/// Runs a command to completion (blocking), feeding `input` on stdin if given, and
/// returns its stdout. Blocking on purpose: cleanup paths (Drop, panic hook, signal)
/// must work without a runtime, and these commands take milliseconds.
pub fn run(prog: &str, args: &[&str], input: Option<&str>) -> Result<String, SysError> {
    let cmd = describe(prog, args);
    let mut child = Command::new(prog)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| SysError::Spawn {
            cmd: cmd.clone(),
            source,
        })?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        // A write error shows up as the command's own failure below.
        let _ = stdin.write_all(text.as_bytes());
    }
    let out = child.wait_with_output().map_err(|source| SysError::Spawn {
        cmd: cmd.clone(),
        source,
    })?;
    if !out.status.success() {
        return Err(SysError::Failed {
            cmd,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Async wrapper of [`run`] for use while the workload runs (keeps the runtime free).
pub async fn run_async(prog: &str, args: &[&str], input: Option<&str>) -> Result<String, SysError> {
    let prog = prog.to_string();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let input = input.map(str::to_string);
    let joined = tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&prog, &a, input.as_deref())
    })
    .await;
    match joined {
        Ok(r) => r,
        Err(e) => Err(SysError::Spawn {
            cmd: "blocking task".into(),
            source: std::io::Error::other(e.to_string()),
        }),
    }
}

/// Makes `cmd` enter the network namespace `ns_file` (an open /run/netns/NAME) between
/// fork and exec, with an empty signal mask and PDEATHSIG=SIGKILL so the child dies
/// with the harness. `ns_file` must stay open until `spawn` returns.
pub fn enter_netns_on_exec(cmd: &mut tokio::process::Command, ns_file: &std::fs::File) {
    use std::os::fd::AsRawFd;
    let fd = ns_file.as_raw_fd();
    cmd.process_group(0);
    // SAFETY: only async-signal-safe syscalls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The harness's signal mask must not leak into the child.
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
            // If the harness dies (even by SIGKILL) the child goes with it.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

/// Fields of /proc/PID/stat after the command name.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: split after the last ')'.
    let rest = text.get(text.rfind(')')? + 1..)?;
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// The process state letter (R, S, T, Z, ...), or None if gone.
pub fn proc_state(pid: u32) -> Option<char> {
    stat_fields(pid)?.first()?.chars().next()
}

/// The process start time (clock ticks since boot): with the PID it identifies one
/// process, so a recycled PID is never mistaken for ours.
pub fn proc_start_time(pid: u32) -> Option<u64> {
    // Field 22 overall; index 19 after dropping pid and comm.
    stat_fields(pid)?.get(19)?.parse().ok()
}

/// True if `pid` still runs and is the same process that had `start`.
pub fn is_same_process(pid: u32, start: Option<u64>) -> bool {
    match (proc_start_time(pid), start) {
        (Some(now), Some(then)) => now == then && proc_state(pid) != Some('Z'),
        (Some(_), None) => proc_state(pid).is_some_and(|s| s != 'Z'),
        _ => false,
    }
}

/// Sends `sig` to `pid`, but only if it is still the process we recorded.
pub fn signal_ours(pid: u32, start: Option<u64>, sig: nix::sys::signal::Signal) -> bool {
    if !is_same_process(pid, start) {
        return false;
    }
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), sig).is_ok()
}

/// Whether a binary is on PATH (or is an existing path).
pub fn which(prog: &str) -> Option<std::path::PathBuf> {
    if prog.contains('/') {
        let p = std::path::PathBuf::from(prog);
        return p.exists().then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(prog))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_recognised_and_other_start_time_is_not() {
        let me = std::process::id();
        let start = proc_start_time(me);
        assert!(start.is_some());
        assert!(is_same_process(me, start));
        assert!(!is_same_process(me, start.map(|s| s + 1)));
        assert!(matches!(proc_state(me), Some('R') | Some('S')));
    }

    #[test]
    fn run_reports_failure_with_stderr() {
        assert_eq!(run("sh", &["-c", "echo hi"], None).unwrap(), "hi\n");
        assert_eq!(run("cat", &[], Some("x")).unwrap(), "x");
        let e = run("sh", &["-c", "echo boom >&2; exit 3"], None).unwrap_err();
        assert!(e.to_string().contains("boom"), "{e}");
    }
}
