//! The `java17` golden base (bookworm, OpenJDK 17 headless): `java` on PATH and at
//! `/usr/bin/java` as the non-root user, and a `cacerts` trust store kiln generated that a
//! TLS client uses: a test CA added through the definition is trusted, and without it the
//! handshake fails. syft lists exactly the locked Debian packages of `java17` and `java21`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common;
use crate::common::Kiln;
use crate::common::bases;
use kiln_e2e::{ensure_containers_conf, free_port, workspace_root};

const TLS_CHECK: &str = r#"
import java.net.URL;
import javax.net.ssl.HttpsURLConnection;

public class TlsCheck {
    public static void main(String[] args) throws Exception {
        HttpsURLConnection c = (HttpsURLConnection) new URL(args[0]).openConnection();
        c.setConnectTimeout(10000);
        c.setReadTimeout(10000);
        System.out.println("status " + c.getResponseCode());
    }
}
"#;

/// `openssl s_server`, killed by PID when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("running openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes `ca.pem` and a `server.pem` / `server.key` for IP 127.0.0.1 signed by it.
fn test_ca(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=kiln test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
            "-out",
            "server.pem",
        ],
    );
}

/// Starts `openssl s_server -www` on 127.0.0.1 and waits until it accepts connections.
fn https_server(dir: &Path) -> (Server, u16) {
    let port = free_port();
    let child = Command::new("openssl")
        .current_dir(dir)
        .args(["s_server", "-accept", &format!("127.0.0.1:{port}")])
        .args([
            "-cert",
            "server.pem",
            "-key",
            "server.key",
            "-www",
            "-quiet",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting openssl s_server");
    let server = Server(child);
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "s_server never listened"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (server, port)
}

/// Compiles `TlsCheck.java` with the host's `javac` into a directory the container can read.
fn tls_check(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(dir.join("TlsCheck.java"), TLS_CHECK).unwrap();
    let classes = dir.join("classes");
    let out = Command::new("javac")
        .args(["--release", "17", "-d"])
        .arg(&classes)
        .arg(dir.join("TlsCheck.java"))
        .output()
        .expect("running the host's javac (Java 17+)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for p in [&classes, &classes.join("TlsCheck.class")] {
        let mode = if p.is_dir() { 0o755 } else { 0o644 };
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    classes
}

pub(crate) fn java17_runs_as_nonroot_and_trusts_its_generated_keystore() {
    ensure_containers_conf();
    let kiln = Kiln::new();
    let defs = kiln.golden_definitions("golden-base", &[]);
    let java17 = std::fs::read_to_string(workspace_root().join("golden-base/java17.toml")).unwrap();
    std::fs::write(defs.join("java17.toml"), &java17).unwrap();

    // The variant trusts a test CA as a local certificate, as update-ca-certificates would.
    let pki = kiln.ws.mkdir("pki");
    test_ca(&pki);
    let ca = std::fs::read_to_string(pki.join("ca.pem")).unwrap();
    std::fs::write(
        defs.join("java17tls.toml"),
        format!(
            "{java17}\n[[files]]\npath = \"/usr/local/share/ca-certificates/kiln-test.crt\"\ncontent = \"\"\"\n{ca}\"\"\"\n"
        ),
    )
    .unwrap();

    // The variant is built from java17's committed lock: files are not locked inputs.
    std::fs::copy(bases::committed_lock("java17"), defs.join("java17tls.lock")).unwrap();
    let cache = kiln.ws.mkdir("cache");
    bases::share_deb_cache(&cache);
    let podman = common::suite::podman();
    podman.load(&bases::archive("java17"));
    podman.load(&kiln.build_base(&defs.join("java17tls.toml"), &cache).0);
    bases::assert_syft_matches_lock(&kiln, "java17");
    let image = "localhost/kiln-base/java17";
    assert_eq!(podman.image_config(image)["User"], "65532:65532");

    for cmd in [
        &["java", "-XshowSettings:properties", "-version"][..],
        &["/usr/bin/java", "-XshowSettings:properties", "-version"][..],
    ] {
        let out = podman.run_once(image, cmd);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{cmd:?}: {stderr}");
        assert!(stderr.contains("openjdk version \"17."), "{stderr}");
        assert!(stderr.contains("user.name = nonroot"), "{stderr}");
    }

    let classes = tls_check(&pki);
    let (_server, port) = https_server(&pki);
    let url = format!("https://127.0.0.1:{port}/");
    let mount = format!("{}:/check:ro", classes.display());
    let check = |image: &str| {
        podman.run_once_with(
            image,
            &["-v", &mount],
            &["java", "-cp", "/check", "TlsCheck", &url],
        )
    };
    let out = check("localhost/kiln-base/java17tls");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("status 200"), "{stdout}{stderr}");

    // The unmodified base does not know the test CA: the handshake fails.
    let out = check(image);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("PKIX path building failed"), "{stderr}");
}

/// `java21` (trixie) = `base` + OpenJDK 21: `java` and the generated keystore work as nonroot,
/// on `base`'s layers; syft lists exactly its locked Debian packages.
pub(crate) fn java21_runs_as_nonroot_with_its_generated_keystore() {
    ensure_containers_conf();
    let kiln = Kiln::new();
    bases::assert_syft_matches_lock(&kiln, "java21");
    let podman = common::suite::podman();
    podman.load(&bases::archive("java21"));
    let image = "localhost/kiln-base/java21";
    let out = podman.run_once(image, &["java", "-XshowSettings:properties", "-version"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("openjdk version \"21."), "{stderr}");
    assert!(stderr.contains("user.name = nonroot"), "{stderr}");
    let out = podman.run_once(
        image,
        &["keytool", "-list", "-cacerts", "-storepass", "changeit"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.matches("trustedCertEntry").count() > 100, "{stdout}");
}
