//! `hearsay doctor`: checks every prerequisite and says what to do when one is missing.

use crate::env::sys;
use std::path::Path;

struct Check {
    name: &'static str,
    ok: bool,
    detail: String,
    fix: &'static str,
    required: bool,
}

fn has_cap_net_admin() -> bool {
    // CapEff bit 12 = CAP_NET_ADMIN.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("CapEff:"))
                .and_then(|l| u64::from_str_radix(l.split_whitespace().nth(1)?, 16).ok())
        })
        .is_some_and(|caps| caps & (1 << 12) != 0)
}

fn version_of(bin: &Path) -> Result<String, String> {
    match std::process::Command::new(bin).arg("--version").output() {
        Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).trim().to_string()),
        Ok(o) => Err(format!("--version exited {}", o.status)),
        Err(e) => Err(e.to_string()),
    }
}

/// Runs all checks, prints them, returns the exit code (0 all required present, else 2).
pub fn doctor() -> i32 {
    let mut checks = Vec::new();
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    checks.push(Check {
        name: "root or CAP_NET_ADMIN",
        ok: euid == 0 || has_cap_net_admin(),
        detail: format!("euid {euid}"),
        fix: "run as root (sudo) or grant CAP_NET_ADMIN+CAP_SYS_ADMIN; namespaces need them",
        required: true,
    });
    let ip = sys::run("ip", &["-V"], None);
    checks.push(Check {
        name: "iproute2 (ip)",
        ok: ip.is_ok(),
        detail: ip
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|e| e.to_string()),
        fix: "apt-get install iproute2",
        required: true,
    });
    let nft = sys::run("nft", &["list", "tables"], None);
    checks.push(Check {
        name: "nftables (nft, bridge family)",
        ok: nft.is_ok(),
        detail: nft
            .map(|_| "nft works".to_string())
            .unwrap_or_else(|e| e.to_string()),
        fix: "apt-get install nftables (kernel needs NF_TABLES with bridge family)",
        required: true,
    });
    let ipt = sys::run("iptables", &["-V"], None);
    checks.push(Check {
        name: "iptables NFQUEUE (delay nemesis)",
        ok: ipt.is_ok(),
        detail: ipt.map(|s| s.trim().to_string()).unwrap_or_else(|e| e.to_string()),
        fix: "apt-get install iptables (needs xt NFQUEUE in the kernel); only the delay nemesis needs it",
        required: false,
    });
    checks.push(Check {
        name: "libfaketime (clock nemesis)",
        ok: crate::faults::clock::libfaketime().is_some(),
        detail: crate::faults::clock::libfaketime()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "not found".into()),
        fix: "apt-get install libfaketime; only the clock nemesis needs it",
        required: false,
    });
    checks.push(Check {
        name: "C compiler (malloc shim for faketime'd redis)",
        ok: sys::which("cc").is_some(),
        detail: sys::which("cc")
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        fix: "apt-get install gcc; only the clock nemesis needs it",
        required: false,
    });
    let redis = sys::which("redis-server");
    checks.push(Check {
        name: "redis-server (target redis/mixed)",
        ok: redis.as_deref().map(version_of).is_some_and(|v| v.is_ok()),
        detail: redis
            .as_deref()
            .map(|p| version_of(p).unwrap_or_else(|e| e))
            .unwrap_or_else(|| "not on PATH".into()),
        fix: "apt-get install redis-server, or pass --redis-server PATH",
        required: false,
    });
    let sentinel = sys::which("redis-sentinel");
    checks.push(Check {
        name: "redis-sentinel (target sentinel)",
        ok: sentinel.is_some(),
        detail: sentinel
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| {
                "not on PATH (the target falls back to redis-server --sentinel)".into()
            }),
        fix: "apt-get install redis-sentinel",
        required: false,
    });
    let nutcracker = sys::which("nutcracker").or_else(|| {
        let p = std::path::PathBuf::from("/usr/sbin/nutcracker");
        p.is_file().then_some(p)
    });
    checks.push(Check {
        name: "nutcracker (target twemproxy)",
        ok: nutcracker.is_some(),
        detail: nutcracker
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "not found".into()),
        fix: "apt-get install nutcracker, or pass --nutcracker PATH",
        required: false,
    });
    let node = crate::targets::server::find_hearsay_node(None);
    checks.push(Check {
        name: "hearsay-node build (target hearsay/mixed)",
        ok: node.is_file(),
        detail: node.display().to_string(),
        fix: "cargo build -p hearsay-node (or --release), or pass --hearsay-node PATH",
        required: false,
    });
    let reg = crate::env::registry::registry_dir();
    let writable = std::fs::create_dir_all(&reg).is_ok();
    checks.push(Check {
        name: "run registry directory",
        ok: writable,
        detail: reg.display().to_string(),
        fix: "make it writable or set HEARSAY_REGISTRY_DIR",
        required: true,
    });
    let leftovers: Vec<String> = std::fs::read_dir(&reg)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let t = std::fs::read_to_string(e.path()).ok()?;
                    let r: crate::env::registry::RunRecord = serde_json::from_str(&t).ok()?;
                    (!crate::env::registry::owner_alive(&r)).then_some(r.prefix)
                })
                .collect()
        })
        .unwrap_or_default();
    checks.push(Check {
        name: "no leftovers of dead runs",
        ok: leftovers.is_empty(),
        detail: format!("{leftovers:?}"),
        fix: "hearsay clean",
        required: false,
    });
    let mut code = 0;
    for c in &checks {
        let mark = if c.ok {
            "ok  "
        } else if c.required {
            "FAIL"
        } else {
            "warn"
        };
        println!("[{mark}] {:<45} {}", c.name, c.detail);
        if !c.ok {
            println!("       fix: {}", c.fix);
            if c.required {
                code = 2;
            }
        }
    }
    code
}
