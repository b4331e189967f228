"""A small local Hugging Face Hub: the endpoints huggingface_hub calls to create a model repo,
commit files (regular and LFS), list and download them.

Implemented (model repos only): ``GET /api/whoami-v2``, ``POST /api/repos/create``,
``GET /api/models/{id}`` (+ ``/revision/{rev}``), ``POST /api/models/{id}/preupload/{rev}``,
``POST /{id}.git/info/lfs/objects/batch``, ``PUT /_lfs/{oid}`` (+ ``POST .../verify``),
``POST /api/models/{id}/commit/{rev}`` (NDJSON), ``GET /api/models/{id}/tree/{rev}[/{path}]``,
``HEAD/GET /{id}/resolve/{rev}/{path}``, ``POST /api/validate-yaml``.

Errors are answered as the Hub does: ``401`` + ``X-Error-Message: Invalid credentials in
Authorization header`` for a bad token, ``404`` + ``X-Error-Code: RepoNotFound`` /
``RevisionNotFound`` / ``EntryNotFound``, ``409`` when creating a repo that exists.

Blobs are stored on disk under ``root/blobs`` so tests can inspect every uploaded byte.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

TOKEN = "hf_ModelKBTestTokenThatMustNeverBeStored1234"
OTHER_TOKEN = "hf_SomebodyElsesTokenForPermissionTests98765"
USER = "ada"
"""The publishing tests' ``hub`` fixture accepts ``TOKEN`` as ``USER`` and ``OTHER_TOKEN`` as "bob"."""

LFS_SUFFIXES = (".onnx", ".safetensors", ".keras", ".bin", ".h5")
LFS_MIN_SIZE = 4096


@dataclass
class _File:
    blob: str  # sha256 of the content (the name under root/blobs)
    size: int
    git_oid: str  # git blob sha1
    lfs: bool


@dataclass
class _Repo:
    owner: str
    private: bool
    commits: list[tuple[str, dict[str, _File]]] = field(default_factory=list)

    def tree(self, revision: str) -> tuple[str, dict[str, _File]] | None:
        if revision in ("main", "HEAD"):
            return self.commits[-1]
        for oid, files in self.commits:
            if oid == revision or (len(revision) >= 7 and oid.startswith(revision)):
                return oid, files
        return None


def _git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


class FakeHub:
    """The Hub's state plus a threaded HTTP server on 127.0.0.1 serving it.

    Args:
        root: Folder for uploaded blobs.
        tokens: token -> user name.
    """

    def __init__(self, root: Path, tokens: dict[str, str]) -> None:
        self.root = Path(root)
        (self.root / "blobs").mkdir(parents=True, exist_ok=True)
        self.tokens = dict(tokens)
        self.repos: dict[str, _Repo] = {}
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        hub = self

        class Handler(_Handler):
            state = hub

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeHub:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- state helpers ------------------------------------------------------------------------------
    def blob_path(self, sha: str) -> Path:
        return self.root / "blobs" / sha

    def store_blob(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        path = self.blob_path(sha)
        if not path.exists():
            path.write_bytes(data)
        return sha

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        """Path -> content of a repo at a revision (for assertions)."""
        oid_files = self.repos[repo_id].tree(revision)
        assert oid_files is not None
        return {path: self.blob_path(f.blob).read_bytes() for path, f in oid_files[1].items()}


class _Handler(BaseHTTPRequestHandler):
    state: FakeHub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # -- plumbing -------------------------------------------------------------------------------------
    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            return self.rfile.read(length)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        return b""

    def _send(
        self,
        status: int,
        body: bytes = b"",
        *,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
        head: bool = False,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _json(
        self, status: int, obj: Any, *, headers: dict[str, str] | None = None, head: bool = False
    ) -> None:
        self._send(status, json.dumps(obj).encode(), headers=headers, head=head)

    def _error(
        self, status: int, message: str, *, code: str | None = None, head: bool = False
    ) -> None:
        headers = {"X-Error-Message": message}
        if code:
            headers["X-Error-Code"] = code
        self._json(status, {"error": message}, headers=headers, head=head)

    def _user(self) -> tuple[str | None, bool]:
        """(user, whether a token was sent). A bad token answers 401 right away (returns bad=True)."""
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return None, False
        token = auth.removeprefix("Bearer ").strip()
        return self.state.tokens.get(token), True

    def _auth(self, *, required: bool, head: bool = False) -> tuple[bool, str | None]:
        user, sent = self._user()
        if sent and user is None:
            self._error(401, "Invalid credentials in Authorization header", head=head)
            return False, None
        if required and user is None:
            self._error(401, "Invalid credentials in Authorization header", head=head)
            return False, None
        return True, user

    def _repo(self, repo_id: str, user: str | None, *, head: bool = False) -> _Repo | None:
        repo = self.state.repos.get(repo_id)
        if repo is None or (repo.private and repo.owner != user):
            self._error(404, "Repository not found", code="RepoNotFound", head=head)
            return None
        return repo

    # -- routing ---------------------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._route("GET")

    def do_HEAD(self) -> None:
        self._route("HEAD")

    def do_POST(self) -> None:
        self._route("POST")

    def do_PUT(self) -> None:
        self._route("PUT")

    def _route(self, method: str) -> None:
        path = unquote(urlsplit(self.path).path)
        self.state.requests.append((method, path))
        body = self._body() if method in ("POST", "PUT") else b""
        head = method == "HEAD"
        routes = [
            ("GET", r"/api/whoami-v2", self._whoami),
            ("POST", r"/api/repos/create", self._create),
            ("POST", r"/api/validate-yaml", self._validate_yaml),
            (
                "POST",
                r"/api/models/(?P<repo>[^/]+/[^/]+)/preupload/(?P<rev>[^/]+)",
                self._preupload,
            ),
            ("POST", r"/api/models/(?P<repo>[^/]+/[^/]+)/commit/(?P<rev>[^/]+)", self._commit),
            (
                "GET",
                r"/api/models/(?P<repo>[^/]+/[^/]+)/tree/(?P<rev>[^/]+)(?:/(?P<sub>.*))?",
                self._tree,
            ),
            ("GET", r"/api/models/(?P<repo>[^/]+/[^/]+)(?:/revision/(?P<rev>[^/]+))?", self._info),
            ("POST", r"/(?P<repo>[^/]+/[^/]+)\.git/info/lfs/objects/batch", self._lfs_batch),
            ("PUT", r"/_lfs/(?P<oid>[0-9a-f]{64})", self._lfs_put),
            ("POST", r"/_lfs/(?P<oid>[0-9a-f]{64})/verify", self._lfs_verify),
            ("GET", r"/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)", self._resolve),
            ("HEAD", r"/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)", self._resolve),
        ]
        for verb, pattern, handler in routes:
            match = re.fullmatch(pattern, path)
            if verb == method and match:
                try:
                    handler(body=body, head=head, **match.groupdict())
                except Exception as err:
                    self._error(500, f"fake hub error: {type(err).__name__}: {err}", head=head)
                return
        self._error(404, f"no route {method} {path}", head=head)

    # -- endpoints -------------------------------------------------------------------------------------
    def _whoami(self, body: bytes, head: bool) -> None:
        ok, user = self._auth(required=True)
        if ok:
            self._json(
                200,
                {
                    "type": "user",
                    "name": user,
                    "fullname": user,
                    "orgs": [],
                    "auth": {
                        "type": "access_token",
                        "accessToken": {"displayName": "test", "role": "write"},
                    },
                },
            )

    def _create(self, body: bytes, head: bool) -> None:
        ok, user = self._auth(required=True)
        if not ok:
            return
        payload = json.loads(body or b"{}")
        owner = payload.get("organization") or user
        repo_id = f"{owner}/{payload['name']}"
        if owner != user:
            self._error(
                403, f"You don't have the rights to create a model under the namespace {owner!r}"
            )
            return
        with self.state.lock:
            if repo_id in self.state.repos:
                self._json(
                    409,
                    {
                        "error": "You already created this model repo",
                        "url": f"{self.state.url}/{repo_id}",
                    },
                    headers={"X-Error-Message": "You already created this model repo"},
                )
                return
            private = payload.get("private") or payload.get("visibility") == "private"
            repo = _Repo(owner=owner, private=bool(private))
            attributes = (
                b"*.onnx filter=lfs diff=lfs merge=lfs -text\n"
                b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
            )
            blob = self.state.store_blob(attributes)
            repo.commits.append(
                (
                    uuid.uuid4().hex + "00000000",
                    {".gitattributes": _File(blob, len(attributes), _git_oid(attributes), False)},
                )
            )
            self.state.repos[repo_id] = repo
        self._json(200, {"url": f"{self.state.url}/{repo_id}", "name": repo_id})

    def _validate_yaml(self, body: bytes, head: bool) -> None:
        content = json.loads(body or b"{}").get("content", "")
        match = re.match(r"^---\n(.*?)\n---\n", content, re.DOTALL)
        errors = []
        if match:
            try:
                data = yaml.safe_load(match.group(1)) or {}
                for entry in data.get("model-index", []) or []:
                    for result in entry.get("results", []):
                        if not result.get("task", {}).get("type") or not result.get("metrics"):
                            errors.append(
                                {"message": "model-index results need task.type and metrics"}
                            )
            except yaml.YAMLError as err:
                errors.append({"message": f"invalid YAML: {err}"})
        if errors:
            self._json(400, {"errors": errors, "warnings": []})
        else:
            self._json(200, {"errors": [], "warnings": []})

    def _info(self, body: bytes, head: bool, repo: str, rev: str | None) -> None:
        ok, user = self._auth(required=False)
        if not ok:
            return
        found = self._repo(repo, user)
        if found is None:
            return
        tree = found.tree(rev or "main")
        if tree is None:
            self._error(404, "Invalid rev id", code="RevisionNotFound")
            return
        oid, files = tree
        blobs = parse_qs(urlsplit(self.path).query).get("blobs", ["false"])[0].lower() == "true"
        siblings = []
        for path in sorted(files):
            sibling: dict[str, Any] = {"rfilename": path}
            if blobs:  # as the Hub answers `files_metadata=True`: sizes, blob ids, LFS details
                f = files[path]
                sibling.update({"size": f.size, "blobId": f.git_oid})
                if f.lfs:
                    sibling["lfs"] = {"sha256": f.blob, "size": f.size, "pointerSize": 134}
            siblings.append(sibling)
        self._json(
            200,
            {
                "id": repo,
                "modelId": repo,
                "author": found.owner,
                "sha": oid,
                "private": found.private,
                "disabled": False,
                "gated": False,
                "downloads": 0,
                "likes": 0,
                "tags": [],
                "siblings": siblings,
            },
        )

    def _preupload(self, body: bytes, head: bool, repo: str, rev: str) -> None:
        ok, user = self._auth(required=True)
        if not ok or (found := self._repo(repo, user)) is None:
            return
        tree = found.tree(rev)
        files = tree[1] if tree else {}
        answer = []
        for item in json.loads(body)["files"]:
            lfs = item["size"] >= LFS_MIN_SIZE or item["path"].endswith(LFS_SUFFIXES)
            existing = files.get(item["path"])
            oid = (
                None if existing is None else (existing.blob if existing.lfs else existing.git_oid)
            )
            answer.append(
                {
                    "path": item["path"],
                    "uploadMode": "lfs" if lfs else "regular",
                    "shouldIgnore": False,
                    "oid": oid,
                }
            )
        self._json(200, {"files": answer, "commitOid": tree[0] if tree else None})

    def _lfs_batch(self, body: bytes, head: bool, repo: str) -> None:
        ok, user = self._auth(required=True)
        if not ok or self._repo(repo, user) is None:
            return
        objects = []
        for obj in json.loads(body)["objects"]:
            entry: dict[str, Any] = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if not self.state.blob_path(obj["oid"]).exists():
                entry["actions"] = {
                    "upload": {"href": f"{self.state.url}/_lfs/{obj['oid']}", "header": {}},
                    "verify": {"href": f"{self.state.url}/_lfs/{obj['oid']}/verify", "header": {}},
                }
            objects.append(entry)
        self._send(
            200,
            json.dumps({"transfer": "basic", "objects": objects}).encode(),
            content_type="application/vnd.git-lfs+json",
        )

    def _lfs_put(self, body: bytes, head: bool, oid: str) -> None:
        if hashlib.sha256(body).hexdigest() != oid:
            self._error(400, "content does not match its oid")
            return
        self.state.store_blob(body)
        self._send(200, b"")

    def _lfs_verify(self, body: bytes, head: bool, oid: str) -> None:
        if self.state.blob_path(oid).exists():
            self._json(200, {"success": True})
        else:
            self._error(404, "object not uploaded")

    def _commit(self, body: bytes, head: bool, repo: str, rev: str) -> None:
        ok, user = self._auth(required=True)
        if not ok or (found := self._repo(repo, user)) is None:
            return
        if found.owner != user:
            self._error(403, "You don't have write access to this repo")
            return
        with self.state.lock:
            tree = found.tree(rev)
            if tree is None:
                self._error(404, "Invalid rev id", code="RevisionNotFound")
                return
            files = dict(tree[1])
            summary = ""
            for line in body.splitlines():
                if not line.strip():
                    continue
                item = json.loads(line)
                key, value = item["key"], item["value"]
                if key == "header":
                    summary = value.get("summary", "")
                elif key == "file":
                    data = base64.b64decode(value["content"])
                    files[value["path"]] = _File(
                        self.state.store_blob(data), len(data), _git_oid(data), False
                    )
                elif key == "lfsFile":
                    blob = self.state.blob_path(value["oid"])
                    if not blob.exists():
                        self._error(422, f"LFS object {value['oid']} was never uploaded")
                        return
                    data = blob.read_bytes()
                    files[value["path"]] = _File(value["oid"], value["size"], _git_oid(data), True)
                elif key == "deletedFile":
                    if value["path"] not in files:
                        self._error(
                            404, "A file with this name doesn't exist", code="EntryNotFound"
                        )
                        return
                    del files[value["path"]]
                elif key == "deletedFolder":
                    prefix = value["path"].rstrip("/") + "/"
                    files = {p: f for p, f in files.items() if not p.startswith(prefix)}
            oid = hashlib.sha1(
                f"{uuid.uuid4()}{summary}".encode(), usedforsecurity=False
            ).hexdigest()
            found.commits.append((oid, files))
        self._json(
            200,
            {
                "commitUrl": f"{self.state.url}/{repo}/commit/{oid}",
                "commitOid": oid,
                "commitMessage": summary,
                "pullRequestUrl": None,
                "success": True,
            },
        )

    def _tree(self, body: bytes, head: bool, repo: str, rev: str, sub: str | None) -> None:
        ok, user = self._auth(required=False)
        if not ok or (found := self._repo(repo, user)) is None:
            return
        tree = found.tree(rev)
        if tree is None:
            self._error(404, "Invalid rev id", code="RevisionNotFound")
            return
        prefix = (sub or "").strip("/")
        entries: dict[str, dict[str, Any]] = {}
        for path, f in sorted(tree[1].items()):
            if prefix and not path.startswith(prefix + "/"):
                continue
            parts = path.split("/")
            for depth in range(1, len(parts)):
                folder = "/".join(parts[:depth])
                if not prefix or folder.startswith(prefix + "/"):
                    entries.setdefault(
                        folder, {"type": "directory", "path": folder, "oid": "0" * 40}
                    )
            entry: dict[str, Any] = {"type": "file", "path": path, "size": f.size, "oid": f.git_oid}
            if f.lfs:
                entry["lfs"] = {"oid": f.blob, "size": f.size, "pointerSize": 134}
            entries[path] = entry
        self._json(200, list(entries.values()))

    def _resolve(self, body: bytes, head: bool, repo: str, rev: str, file: str) -> None:
        ok, user = self._auth(required=False, head=head)
        if not ok or (found := self._repo(repo, user, head=head)) is None:
            return
        tree = found.tree(rev)
        if tree is None:
            self._error(404, "Invalid rev id", code="RevisionNotFound", head=head)
            return
        oid, files = tree
        entry = files.get(file)
        if entry is None:
            self._error(404, "Entry not found", code="EntryNotFound", head=head)
            return
        data = self.state.blob_path(entry.blob).read_bytes()
        headers = {"X-Repo-Commit": oid, "ETag": f'"{entry.git_oid}"', "Accept-Ranges": "none"}
        if entry.lfs:
            headers["X-Linked-Etag"] = f'"{entry.blob}"'
            headers["X-Linked-Size"] = str(entry.size)
        self._send(200, data, headers=headers, content_type="application/octet-stream", head=head)


def main() -> None:  # pragma: no cover - manual use: python hub_server.py ROOT TOKEN USER
    import sys
    import time

    hub = FakeHub(Path(sys.argv[1]), {sys.argv[2]: sys.argv[3]}).start()
    print(hub.url, flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
