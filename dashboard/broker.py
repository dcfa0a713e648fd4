"""The embedded broker: kombu's filesystem transport, made safe to lose a process at any moment.

kombu's own filesystem transport writes a message in place and a consumer moves and reads it
without the writer's lock, so a consumer can read a file that is still empty and die of a
JSONDecodeError; and it deletes a message as soon as it is read, so a worker killed before it
acknowledges loses the task. This transport keeps kombu's folder layout and exchange tables and
changes how a message travels:

- **written atomically**: into ``tmp/`` first (flushed to disk), then renamed into ``queue/``;
  a file in ``queue/`` is always whole;
- **taken under a lock**: a consumer opens a message, takes an exclusive ``flock`` on it, checks
  that it parses, and renames it into ``processing/``. It keeps the open file, and so the lock,
  until the message is acknowledged (then the file is deleted) or rejected (then a fresh copy goes
  back to ``queue/``);
- **restored when its consumer is gone**: the kernel drops a dead process's locks, so a file in
  ``processing/`` that can be locked belongs to nobody. Every consumer looks for such files when
  it starts and every ``restore_interval`` seconds and puts them back into ``queue/`` under their
  old name (their old place in the queue), marked redelivered. A SIGKILLed worker's message
  comes back at the next worker start, or at once if another worker runs;
- **never killed by a message**: an empty, truncated or otherwise unreadable file is skipped
  while it is young (a foreign writer may still be writing it) and then set aside into
  ``corrupt/`` with a warning in the log; no file ever raises out of ``_get``.

Delivery is at least once: a message can come twice (its consumer died after acting and before
acknowledging). The product guards against that with the per-transformation lock, the cycle
items in the database and the reconcile of pending actions, not with the broker.

The folders live on one local file system (``rename`` is atomic only within one, and ``flock``
is not reliable over NFS); Redis or RabbitMQ are for several machines.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from queue import Empty

from kombu.exceptions import ChannelError
from kombu.transport import filesystem, virtual
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads
from kombu.utils.objects import cached_property

from failover.outcomes import count

log = logging.getLogger(__name__)

#: A message file that does not parse is left alone this long (seconds since its last change):
#: a writer that does not write atomically may still be writing it.
DEFAULT_CORRUPT_GRACE = 5.0
#: How often (seconds) a consumer looks for messages whose consumer is gone.
DEFAULT_RESTORE_INTERVAL = 5.0


@dataclass
class _Claim:
    """A message this process took: its file in ``processing/``, held open under an exclusive lock."""

    path: str
    fd: int
    pid: int
    queue: str


# Claims are per process, not per channel: kombu may settle a message through another channel of
# the same connection (a message for a queue without consumer is rejected on the first channel).
_claims: dict[str, list[_Claim]] = {}
_claims_lock = threading.Lock()


def _close_inherited_claims() -> None:
    # A pool process forked by the worker inherits the worker's open message files, and with them
    # a share of each flock: the lock would outlive the worker. The child never settles the
    # parent's messages, so it lets go of them. Runs in the child right after fork, where only the
    # forking thread exists, so no lock is taken.
    for claims in list(_claims.values()):
        for claim in claims:
            try:
                os.close(claim.fd)
            except OSError:
                pass
    _claims.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_inherited_claims)


def message_name(queue: str) -> str:
    """``<ms since the epoch, 13 digits>_<uuid>.<queue>.msg``: sorted names are oldest first."""
    return f"{time.time_ns() // 1_000_000:013d}_{uuid.uuid4()}.{queue}.msg"


def write_atomically(folder: str | Path, name: str, data: bytes, tmp_folder: str | Path, fsync: bool = True) -> str:
    """Write ``data`` to ``folder/name`` so that no reader ever sees a part of it."""
    tmp = os.path.join(tmp_folder, f"{name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if fsync:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        _unlink(tmp)
        raise
    os.close(fd)
    target = os.path.join(folder, name)
    os.rename(tmp, target)
    return target


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _lock_if_current(path: str) -> int | None:
    """Open ``path`` and take an exclusive lock without waiting; None if it is gone or held.

    The lock is ours only if ``path`` still names the file we locked: a file renamed away and
    replaced meanwhile (a restored copy under the same name) is another message.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return None
        raise
    try:
        same = os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        same = False
    if not same:
        os.close(fd)
        return None
    return fd


def _read_all(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


class Channel(filesystem.Channel):
    """See the module's docstring."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._noack_queues: set[str] = set()
        self._next_restore = 0.0
        for folder in (self.data_folder_in, self.data_folder_out, self.processing_folder, self.corrupt_folder,
                       self.tmp_folder):
            Path(folder).mkdir(parents=True, exist_ok=True)

    # -- options ---------------------------------------------------------------------------------
    def _sibling(self, option: str, name: str) -> str:
        return self.transport_options.get(option) or str(Path(self.data_folder_in).parent / name)

    @cached_property
    def processing_folder(self) -> str:
        return self._sibling("processing_folder", "processing")

    @cached_property
    def corrupt_folder(self) -> str:
        return self._sibling("corrupt_folder", "corrupt")

    @cached_property
    def tmp_folder(self) -> str:
        return self._sibling("tmp_folder", "tmp")

    @cached_property
    def corrupt_grace(self) -> float:
        return float(self.transport_options.get("corrupt_grace", DEFAULT_CORRUPT_GRACE))

    @cached_property
    def restore_interval(self) -> float:
        return float(self.transport_options.get("restore_interval", DEFAULT_RESTORE_INTERVAL))

    @cached_property
    def fsync(self) -> bool:
        return bool(self.transport_options.get("fsync", True))

    # -- writing ---------------------------------------------------------------------------------
    def _put(self, queue, payload, **kwargs):
        name = message_name(queue)
        try:
            write_atomically(self.data_folder_out, name, str_to_bytes(dumps(payload)), self.tmp_folder, self.fsync)
        except OSError as exc:
            raise ChannelError(f"Cannot add message {name!r} to {self.data_folder_out}: {exc}") from exc

    # -- taking ----------------------------------------------------------------------------------
    def basic_consume(self, queue, no_ack, callback, consumer_tag, **kwargs):
        if no_ack:
            self._noack_queues.add(queue)
        else:
            self._noack_queues.discard(queue)
        return super().basic_consume(queue, no_ack, callback, consumer_tag, **kwargs)

    def basic_cancel(self, consumer_tag):
        queue = self._tag_to_queue.get(consumer_tag)
        super().basic_cancel(consumer_tag)
        if queue is not None and queue not in self._tag_to_queue.values():
            self._noack_queues.discard(queue)

    def basic_get(self, queue, no_ack=False, **kwargs):
        try:
            message = self.Message(self._take(queue, no_ack=no_ack), channel=self)
        except Empty:
            return None
        if not no_ack:
            self.qos.append(message, message.delivery_tag)
        return message

    def _get(self, queue, timeout=None):
        return self._take(queue, no_ack=queue in self._noack_queues)

    def _take(self, queue: str, no_ack: bool) -> dict:
        now = time.monotonic()
        if now >= self._next_restore:
            self._next_restore = now + self.restore_interval
            self.restore_abandoned()
        wanted = f"{queue}.msg"
        try:
            names = sorted(os.listdir(self.data_folder_in))
        except OSError as exc:
            log.warning("embedded broker: cannot list %s: %s", self.data_folder_in, exc)
            raise Empty() from None
        for name in names:
            if name.partition(".")[2] != wanted:
                continue
            try:
                payload = self._claim(name, queue, no_ack)
            except Exception:  # one file must never stop the consumer
                log.exception("embedded broker: skipped message %s", name)
                continue
            if payload is not None:
                return payload
        raise Empty()

    def _claim(self, name: str, queue: str, no_ack: bool) -> dict | None:
        path = os.path.join(self.data_folder_in, name)
        fd = _lock_if_current(path)
        if fd is None:
            return None  # taken by another consumer, or being written by a foreign writer
        keep = False
        try:
            raw = _read_all(fd)
            problem = self._check(raw)
            if problem:
                age = time.time() - os.fstat(fd).st_mtime
                if age < self.corrupt_grace:
                    return None  # perhaps still being written: try again at the next poll
                self._set_aside(path, name, problem)
                return None
            payload = loads(bytes_to_str(raw))
            target = os.path.join(self.processing_folder, name)
            os.rename(path, target)
            if no_ack:
                _unlink(target)
                return payload
            tag = payload["properties"]["delivery_tag"]
            with _claims_lock:
                _claims.setdefault(tag, []).append(_Claim(target, fd, os.getpid(), queue))
            keep = True
            return payload
        finally:
            if not keep:
                os.close(fd)

    def _check(self, raw: bytes) -> str:
        """What is wrong with a message file, or "" if a kombu Message can be made of it."""
        if not raw.strip():
            return "empty"
        try:
            payload = loads(bytes_to_str(raw))
        except (ValueError, UnicodeDecodeError) as exc:
            return f"not JSON ({exc})"
        try:
            if not isinstance(payload, dict) or not isinstance(payload.get("properties"), dict):
                return "not a kombu message (no properties)"
            properties = payload["properties"]
            if not isinstance(properties.get("delivery_tag"), str):
                return "not a kombu message (no delivery tag)"
            info = properties.get("delivery_info")
            if not isinstance(info, dict) or "exchange" not in info or "routing_key" not in info:
                return "not a kombu message (no delivery info)"
            self.Message(payload, channel=self)  # decodes the body as the consumer will
        except Exception as exc:
            return f"not a kombu message ({exc.__class__.__name__}: {exc})"
        return ""

    def _set_aside(self, path: str, name: str, problem: str) -> None:
        target = os.path.join(self.corrupt_folder, name)
        os.rename(path, target)
        log.warning("embedded broker: message %s is %s; set aside as %s", name, problem, target)

    # -- settling --------------------------------------------------------------------------------
    def _pop_claim(self, delivery_tag) -> _Claim | None:
        with _claims_lock:
            claims = _claims.get(delivery_tag)
            if not claims:
                return None
            claim = claims.pop(0)
            if not claims:
                del _claims[delivery_tag]
        if claim.pid != os.getpid():
            return None  # inherited over fork: the parent settles it
        return claim

    def _settle(self, delivery_tag) -> None:
        """The message is done with: delete (or keep as processed) its file and let go of it."""
        claim = self._pop_claim(delivery_tag)
        if claim is None:
            return
        try:
            if self.store_processed:
                os.replace(claim.path, os.path.join(self.processed_folder, os.path.basename(claim.path)))
            else:
                _unlink(claim.path)
        finally:
            os.close(claim.fd)

    def basic_ack(self, delivery_tag, multiple=False):
        super().basic_ack(delivery_tag, multiple=multiple)
        self._settle(delivery_tag)

    def basic_reject(self, delivery_tag, requeue=False):
        # With requeue, kombu calls _restore, which writes a fresh copy and settles the claim.
        super().basic_reject(delivery_tag, requeue=requeue)
        self._settle(delivery_tag)

    def _restore(self, message):
        # A fresh copy (a new file, so no lock inherited by a pool process can hold it), then the
        # taken file goes: a crash in between gives a duplicate, never a loss.
        super()._restore(message)
        self._settle(message.delivery_tag)

    # -- consumers that are gone -----------------------------------------------------------------
    def restore_abandoned(self) -> int:
        """Put back into the queue every taken message whose consumer is gone. Returns how many."""
        restored = 0
        try:
            names = sorted(os.listdir(self.processing_folder))
        except OSError:
            return 0
        for name in names:
            path = os.path.join(self.processing_folder, name)
            try:
                fd = _lock_if_current(path)
                if fd is None:
                    continue  # its consumer is alive (or it was settled meanwhile)
                try:
                    raw = _read_all(fd)
                    if self._check(raw):
                        self._set_aside(path, name, "unreadable after it was taken")
                        continue
                    payload = loads(bytes_to_str(raw))
                    payload["redelivered"] = True
                    write_atomically(self.data_folder_out, name, str_to_bytes(dumps(payload)), self.tmp_folder,
                                     self.fsync)
                    _unlink(path)
                    restored += 1
                finally:
                    os.close(fd)
            except Exception:
                log.exception("embedded broker: could not restore %s", name)
        if restored:
            log.warning("embedded broker: restored %s whose worker was gone", count(restored, "message"))
        self._sweep_tmp()
        return restored

    def _sweep_tmp(self) -> None:
        # A producer killed between write and rename leaves a partial file in tmp/: it was never
        # published (the producer got no answer), so it goes after an hour.
        try:
            names = os.listdir(self.tmp_folder)
        except OSError:
            return
        cutoff = time.time() - 3600
        for name in names:
            path = os.path.join(self.tmp_folder, name)
            try:
                if os.stat(path).st_mtime < cutoff:
                    _unlink(path)
            except OSError:
                pass


class Transport(filesystem.Transport):
    Channel = Channel
    # kombu's filesystem transport shares its exchange state class-wide; so do we, separately.
    global_state = virtual.BrokerState()
    driver_type = "filesystem"
    driver_name = "failover-filesystem"

    @property
    def default_connection_params(self):
        # No host to connect to: without this kombu warns "No hostname was supplied" in every
        # process that prints the broker's address (worker banner, status commands).
        return {"port": self.default_port, "hostname": None}


def stats(broker_dir: str | Path) -> dict[str, int]:
    """How many files each of the broker's folders holds (for health pages and tests)."""
    out = {}
    for sub in ("queue", "processing", "corrupt", "tmp"):
        try:
            out[sub] = sum(1 for n in os.listdir(Path(broker_dir) / sub) if not n.startswith("."))
        except OSError:
            out[sub] = 0
    return out


__all__ = ["Channel", "Transport", "message_name", "stats", "write_atomically"]
