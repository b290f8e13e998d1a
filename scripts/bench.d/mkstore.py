#!/usr/bin/env python3
"""Fallback for scripts/bench while `vimgfs import --from-list` does not exist yet.

Writes a store of raw images in the layout vimgfs itself writes (OCI image layout: one manifest,
one config and one layer blob per image, index.json descriptors with the io.vimgfs.* cache
annotations), from a list of "FILE NAME" lines, in one go. scripts/bench then checks the result
with `vimgfs fsck`. Used only when the import verb cannot take a list.

usage: mkstore.py STORE LIST
"""
import datetime
import hashlib
import json
import os
import sys


def dumps(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


def put_blob(blobs, data):
    hexd = hashlib.sha256(data).hexdigest()
    path = os.path.join(blobs, hexd)
    if not os.path.exists(path):
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, path)
    return "sha256:" + hexd, len(data)


def main():
    store, listing = sys.argv[1], sys.argv[2]
    blobs = os.path.join(store, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)
    os.makedirs(os.path.join(store, ".vimgfs", "staging"), exist_ok=True)
    if os.path.exists(os.path.join(store, "index.json")):
        sys.exit("mkstore: %s already has an index.json" % store)
    with open(os.path.join(store, "oci-layout"), "wb") as f:
        f.write(b'{"imageLayoutVersion":"1.0.0"}')
    created = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    descriptors = []
    with open(listing) as lines:
        for line in lines:
            line = line.strip()
            if not line:
                continue
            file, name = line.split(" ", 1)
            with open(file, "rb") as f:
                data = f.read()
            layer, size = put_blob(blobs, data)
            config, config_size = put_blob(blobs, dumps(
                {"format": "raw", "virtualSize": size, "created": created}))
            manifest, manifest_size = put_blob(blobs, dumps({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "artifactType": "application/vnd.vimgfs.image.v1",
                "config": {"mediaType": "application/vnd.vimgfs.image.config.v1+json",
                           "digest": config, "size": config_size},
                "layers": [{"mediaType": "application/vnd.vimgfs.disk.raw", "digest": layer, "size": size}],
                "annotations": {"org.opencontainers.image.created": created}}))
            descriptors.append({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest, "size": manifest_size,
                "artifactType": "application/vnd.vimgfs.image.v1",
                "annotations": {
                    "org.opencontainers.image.ref.name": name,
                    "org.opencontainers.image.created": created,
                    "io.vimgfs.layer.digest": layer,
                    "io.vimgfs.layer.size": str(size),
                    "io.vimgfs.config.digest": config,
                    "io.vimgfs.format": "raw",
                    "io.vimgfs.virtual-size": str(size)}})
    index = os.path.join(store, "index.json")
    with open(index + ".tmp", "wb") as f:
        f.write(dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                       "manifests": descriptors}))
        f.flush()
        os.fsync(f.fileno())
    os.rename(index + ".tmp", index)
    print("mkstore: %d images written to %s" % (len(descriptors), store))


if __name__ == "__main__":
    main()
