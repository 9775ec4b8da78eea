#!/usr/bin/env python3
"""Pushes a tiny deterministic linux/amd64 base image to a plain-HTTP registry.

usage: tiny-base.py HOST:PORT REPO TAG

One gzip layer: /etc/passwd and /etc/group (root, nonroot 65532), /tmp (1777). Built here
rather than by kiln so that the base is the same bytes whatever kiln version is measured,
and kiln and ko both start from it. Prints the manifest digest.
"""

import gzip
import hashlib
import io
import json
import sys
import tarfile
import urllib.request

MTIME = 315532801  # 1980-01-01T00:00:01Z


def layer():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        def add(name, mode, data=None):
            info = tarfile.TarInfo(name)
            info.mtime, info.mode = MTIME, mode
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))

        add("etc", 0o755)
        add("etc/group", 0o644, b"root:x:0:\nnonroot:x:65532:\n")
        add("etc/passwd", 0o644,
            b"root:x:0:0:root:/root:/sbin/nologin\n"
            b"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")
        add("tmp", 0o1777)
    tar_bytes = buf.getvalue()
    gz = gzip.compress(tar_bytes, mtime=0)
    return tar_bytes, gz


def request(method, url, body=None, headers=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    with urllib.request.urlopen(req) as resp:
        return resp


def push_blob(base, repo, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    location = request("POST", f"{base}/v2/{repo}/blobs/uploads/").headers["Location"]
    if location.startswith("/"):
        location = base + location
    sep = "&" if "?" in location else "?"
    request("PUT", f"{location}{sep}digest={digest}", data,
            {"Content-Type": "application/octet-stream"})
    return digest


def main():
    host, repo, tag = sys.argv[1:4]
    base = f"http://{host}"
    tar_bytes, gz = layer()
    diff_id = "sha256:" + hashlib.sha256(tar_bytes).hexdigest()
    layer_digest = push_blob(base, repo, gz)
    config = json.dumps({
        "architecture": "amd64",
        "config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"]},
        "created": "1980-01-01T00:00:01Z",
        "os": "linux",
        "rootfs": {"diff_ids": [diff_id], "type": "layers"},
    }, sort_keys=True, separators=(",", ":")).encode()
    config_digest = push_blob(base, repo, config)
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer_digest, "size": len(gz)}],
    }, sort_keys=True, separators=(",", ":")).encode()
    request("PUT", f"{base}/v2/{repo}/manifests/{tag}", manifest,
            {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    print("sha256:" + hashlib.sha256(manifest).hexdigest())


if __name__ == "__main__":
    main()
