"""The asyncio TCP server of the wire contract, the journal writer and the upstream link.

* Each connection (:class:`TerminalConnection`) cuts frames out of the bytes it receives and
  hands each request to the :class:`Writer`, which batches whatever has queued up and runs
  the batch in one transaction (group commit); responses go out, in any order, when their
  batch is durable.
* :class:`Upstream` keeps one persistent connection to the issuer host and multiplexes
  requests over it by STAN; an unanswered request times out (the terminal gets ``91``) and a
  reversal is stored and forwarded; while the link is down non-on-us cards get ``91``.
* Several processes may listen on the same port (``SO_REUSEPORT``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import itertools
import logging
import signal
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

from cardops.gateway import codec
from cardops.gateway.config import GatewayConfig
from cardops.gateway.engine import Ctx, Engine

log = logging.getLogger("cardops.gateway")

IDLE_TIMEOUT = 300.0  # seconds a connection may sit without sending a frame
BODY_TIMEOUT = 5.0  # seconds to deliver the rest of a frame once its length arrived


class Writer:
    """Group commit: everything queued while one batch is being written goes in the next.

    On SQLite the batches run in the event loop's own thread (``inline``): SQLite's work is
    in-process CPU like the rest, so a second thread only added GIL hand-overs (measured:
    20 % more throughput inline); frames arriving meanwhile wait in the kernel and make the
    next batch. On PostgreSQL the batch runs in one database thread, so that the loop keeps
    serving while the database answers over the network. Either way there is one writer:
    every database call of the server goes through :meth:`call`.
    """

    def __init__(self, engine: Engine, *, inline: bool | None = None) -> None:
        self.engine = engine
        self.inline = engine.uses_sqlite() if inline is None else inline
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="gateway-db")
        self.queue: asyncio.Queue[tuple[Ctx, asyncio.Future[None] | Callable[[Ctx], None]]] = (
            asyncio.Queue()
        )

    async def run_ctx(self, ctx: Ctx) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.queue.put_nowait((ctx, future))
        await future

    def enqueue(self, ctx: Ctx, then: Callable[[Ctx], None]) -> None:
        """Queue ``ctx`` for the next batch; ``then(ctx)`` is called once it is done (no
        task, no future: the path of most requests)."""
        self.queue.put_nowait((ctx, then))

    async def call(self, fn: Any, *args: Any) -> Any:
        """Run database work: inline, or on the one database thread."""
        if self.inline:
            return fn(*args)
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def loop(self) -> None:
        limit = self.engine.config.max_batch
        linger = self.engine.config.batch_linger_ms / 1000
        linger_below = self.engine.config.batch_linger_below
        while True:
            batch = [await self.queue.get()]
            while len(batch) < limit and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            if len(batch) < linger_below and linger > 0:
                # a small batch waits a moment for company: each batch has fixed costs (its
                # transaction, commit, audit entry), so under steady paced load a little
                # patience halves the CPU per request; a saturated queue never waits
                await asyncio.sleep(linger)
                while len(batch) < limit and not self.queue.empty():
                    batch.append(self.queue.get_nowait())
            try:
                await self.call(self.engine.process_batch, [c for c, _ in batch])
            finally:
                for ctx, done in batch:
                    if isinstance(done, asyncio.Future):
                        if not done.done():
                            done.set_result(None)
                        continue
                    try:
                        done(ctx)
                    except Exception:
                        log.exception("answering %s/%s failed", ctx.tid, ctx.stan)
            if self.inline:
                await asyncio.sleep(0)  # the frames that came in meanwhile are read first


class Upstream:
    """One persistent, multiplexed ISO 8583 connection to the issuer host."""

    def __init__(self, server: GatewayServer, host: str, port: int) -> None:
        self.server = server
        self.host, self.port = host, port
        self.writer: asyncio.StreamWriter | None = None
        self.pending: dict[str, asyncio.Future[codec.Message]] = {}
        self.stans = itertools.cycle(range(1, 1_000_000))
        self.was_up = False
        self.connected = asyncio.Event()

    @property
    def up(self) -> bool:
        return self.writer is not None and not self.writer.is_closing()

    async def run(self) -> None:
        delay = 0.2
        while True:
            try:
                reader, writer = await asyncio.open_connection(self.host, self.port)
            except OSError:
                self._down()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            delay = 0.2
            with contextlib.suppress(OSError):
                writer.get_extra_info("socket").setsockopt(
                    socket.IPPROTO_TCP, socket.TCP_NODELAY, 1
                )
            self.writer = writer
            self.was_up = True
            self.connected.set()
            self.server.engine.metrics.upstream_up = 1
            log.info("upstream %s:%s connected", self.host, self.port)
            try:
                while True:
                    payload = await codec.read_frame(reader, max_len=8192)
                    try:
                        reply = codec.decode(payload)
                    except ValueError:
                        continue
                    future = self.pending.pop(reply.get("11", ""), None)
                    if future is not None and not future.done():
                        future.set_result(reply)
            except (asyncio.IncompleteReadError, OSError, codec.FrameTooLong):
                pass
            finally:
                writer.close()
                self.writer = None
                self._down()

    def _down(self) -> None:
        self.connected.clear()
        self.server.engine.metrics.upstream_up = 0
        for future in self.pending.values():
            if not future.done():
                future.set_exception(ConnectionError("upstream link lost"))
        self.pending.clear()
        if self.was_up:
            self.was_up = False
            log.warning("upstream %s:%s is down", self.host, self.port)
            self.server.spawn(
                self.server.writer.call(
                    self.server.engine.alert,
                    "Gateway: upstream host unreachable",
                    f"The link to the upstream host {self.host}:{self.port} went down at "
                    f"{time.strftime('%Y-%m-%d %H:%M:%S')} (node {self.server.engine.node}). "
                    "Cards off our BIN are declined with 91 and reversals are stored until it "
                    "is back.",
                    f"gateway-upstream-down:{self.server.engine.node}:{int(time.time() // 600)}",
                )
            )

    async def request(
        self, message: codec.Message, timeout: float
    ) -> tuple[str, codec.Message | None]:
        """Send; (STAN used, reply or None on timeout / lost link)."""
        stan = f"{next(self.stans):06d}"
        if not self.up:
            return stan, None
        out = dict(message)
        out["11"] = stan
        future: asyncio.Future[codec.Message] = asyncio.get_running_loop().create_future()
        self.pending[stan] = future
        try:
            assert self.writer is not None
            self.writer.write(codec.frame(codec.encode(out)))
            return stan, await asyncio.wait_for(future, timeout)
        except (TimeoutError, ConnectionError, OSError, ValueError):
            return stan, None
        finally:
            self.pending.pop(stan, None)


class TerminalConnection(asyncio.Protocol):
    """One terminal's TCP connection: 2-byte length frames in, responses out in any order.

    A protocol rather than stream reader/writer tasks: frames are cut out of the received
    bytes in ``data_received`` (no task, no ``wait_for`` per frame). A request goes straight
    into the writer's queue and is answered by a callback after its batch; a reversal, or a
    request whose TID + STAN is still being processed, runs in its own task that waits
    first. After the end of the stream or a frame that closes the connection, the requests
    already received are still answered, then the connection is closed.
    """

    def __init__(self, server: GatewayServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.pending = 0
        self.closing = False
        self.counted = False
        self.partial_since: float | None = None
        self.last_frame = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        with contextlib.suppress(OSError, AttributeError):
            self.transport.get_extra_info("socket").setsockopt(
                socket.IPPROTO_TCP, socket.TCP_NODELAY, 1
            )
        self.last_frame = asyncio.get_running_loop().time()
        self.server.connections.add(self)
        self.server.engine.metrics.connections += 1
        self.counted = True

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        buffer = self.buffer
        buffer += data
        start, size, frames = 0, len(buffer), 0
        while size - start >= 2:
            length = (buffer[start] << 8) | buffer[start + 1]
            if length == 0 or length > codec.MAX_FRAME:
                self.finish()
                return
            end = start + 2 + length
            if end > size:
                break
            frames += 1
            if not self.server.received(self, bytes(buffer[start + 2 : end])):
                self.finish()
                return
            start = end
        if start:
            del buffer[:start]
        now = asyncio.get_running_loop().time()
        if frames:
            self.last_frame = now
        if not buffer:
            self.partial_since = None
        elif frames or self.partial_since is None:
            self.partial_since = now

    def eof_received(self) -> bool:
        self.finish()
        return True  # keep the transport open to send the answers still due

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.server.connections.discard(self)
        if self.counted:
            self.counted = False
            self.server.engine.metrics.connections -= 1

    def send(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def done(self, task: asyncio.Future[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("request failed", exc_info=task.exception())
        self.answered()

    def answered(self) -> None:
        """One request fewer to answer; the last one closes a connection that is ending."""
        self.pending -= 1
        if self.closing and not self.pending:
            self.close()

    def finish(self) -> None:
        """Read no more; close once the requests received have been answered."""
        self.closing = True
        self.buffer.clear()
        self.partial_since = None
        if not self.pending:
            self.close()

    def close(self) -> None:
        self.closing = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


class GatewayServer:
    def __init__(self, engine: Engine, *, background: bool = True) -> None:
        self.engine = engine
        self.writer = Writer(engine)
        self.background = background
        # (TID, STAN) being processed → a future for those who wait for it (made when the
        # first one does)
        self.inflight: dict[tuple[str, str], asyncio.Future[None] | None] = {}
        self.tasks: set[asyncio.Task[Any]] = set()
        self.upstream: Upstream | None = None
        self.servers: list[asyncio.Server] = []
        self.connections: set[TerminalConnection] = set()
        self.port = 0

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def start(self, host: str, port: int) -> int:
        config = self.engine.config
        self.spawn(self.writer.loop())
        if config.upstream:
            up_host, _, up_port = config.upstream.rpartition(":")
            self.upstream = Upstream(self, up_host or "127.0.0.1", int(up_port))
            self.engine.upstream_available = lambda: self.upstream is not None and self.upstream.up
            self.spawn(self.upstream.run())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.upstream.connected.wait(), 2.0)
        self.spawn(self.sweep())
        server = await asyncio.get_running_loop().create_server(
            self.connection, host, port, reuse_port=True, reuse_address=True, backlog=1024
        )
        self.servers.append(server)
        self.port = server.sockets[0].getsockname()[1]
        if self.background:
            self.spawn(self.housekeeping())
            if config.metrics_port:
                metrics = await asyncio.start_server(
                    self.metrics_http, host, config.metrics_port, reuse_port=True
                )
                self.servers.append(metrics)
        log.info("gateway %s listening on %s:%s", self.engine.node, host, self.port)
        return self.port

    async def stop(self) -> None:
        for server in self.servers:
            server.close()
        for conn in list(self.connections):
            conn.close()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.sleep(0)
        self.writer.executor.shutdown(wait=True)

    # --- terminals ------------------------------------------------------------------------

    def connection(self) -> TerminalConnection:
        return TerminalConnection(self)

    def received(self, conn: TerminalConnection, payload: bytes) -> bool:
        """One frame from a terminal; False when the connection is to be closed."""
        ctx = Ctx(raw=payload)
        try:
            ctx.msg = codec.decode(payload)
        except Exception:
            part = codec.partial(payload)
            if not {"t", "11", "41"} <= part.keys():
                return False  # nothing to answer to: close, as the contract says
            ctx.msg, ctx.preset = part, "30"
        conn.pending += 1
        msg = ctx.msg
        key = (msg.get("41", ""), msg.get("11", ""))
        if key not in self.inflight and msg.get("t") != "0400":
            # nothing to wait for: straight into the next batch, answered by a callback
            self.inflight[key] = None
            self.writer.enqueue(ctx, functools.partial(self.answered, conn, key))
            return True
        task = asyncio.ensure_future(self.submit(ctx, conn))
        task.add_done_callback(conn.done)
        return True

    def answered(self, conn: TerminalConnection, key: tuple[str, str], ctx: Ctx) -> None:
        """A request of the direct path is through its batch: send its answer, or forward it
        upstream first (in a task, as :meth:`submit` would)."""
        if ctx.forward is not None:
            task = asyncio.ensure_future(self.finish_forward(ctx, conn, key))
            task.add_done_callback(conn.done)
            return
        self.release(key)
        if ctx.out:
            conn.send(ctx.out)
        conn.answered()

    async def finish_forward(
        self, ctx: Ctx, conn: TerminalConnection, key: tuple[str, str]
    ) -> None:
        try:
            await self.forward(ctx)
        finally:
            self.release(key)
        if ctx.out:
            conn.send(ctx.out)

    def release(self, key: tuple[str, str]) -> None:
        """``key`` is answered: whoever waits for it goes on."""
        waiting = self.inflight.pop(key, None)
        if waiting is not None and not waiting.done():
            waiting.set_result(None)

    async def sweep(self) -> None:
        """Close connections idle for IDLE_TIMEOUT or stuck in a frame for BODY_TIMEOUT."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(1.0)
            now = loop.time()
            for conn in list(self.connections):
                if conn.partial_since is not None:
                    if now - conn.partial_since > BODY_TIMEOUT:
                        conn.finish()
                elif now - conn.last_frame > IDLE_TIMEOUT:
                    conn.finish()

    async def submit(self, ctx: Ctx, conn: TerminalConnection) -> None:
        msg = ctx.msg
        key = (msg.get("41", ""), msg.get("11", ""))
        waits = [key]
        if msg.get("t") == "0400":
            original = codec.parse_original(msg.get("90", ""))
            if original is not None:
                waits.append((key[0], original[1]))
        loop = asyncio.get_running_loop()
        for wanted in waits:
            while wanted in self.inflight:
                waiting = self.inflight[wanted]
                if waiting is None:  # a direct-path request nobody waited for until now
                    waiting = self.inflight[wanted] = loop.create_future()
                await asyncio.shield(waiting)
        self.inflight[key] = None
        try:
            await self.writer.run_ctx(ctx)
            if ctx.forward is not None:
                await self.forward(ctx)
        finally:
            self.release(key)
        if ctx.out:
            conn.send(ctx.out)

    async def forward(self, ctx: Ctx) -> None:
        assert ctx.forward is not None and self.upstream is not None
        timeout = self.engine.config.upstream_timeout_ms / 1000
        ctx.upstream_stan, ctx.upstream_reply = await self.upstream.request(ctx.forward, timeout)
        ctx.stage = "finish"
        await self.writer.run_ctx(ctx)

    # --- background -----------------------------------------------------------------------

    async def housekeeping(self) -> None:
        """Store-and-forward, heartbeat with metrics, decline-rate alerts."""
        tick = 0
        while True:
            await asyncio.sleep(1.0)
            tick += 1
            try:
                await self.forward_stored()
                if tick % 2 == 0:
                    await self.writer.call(self.engine.heartbeat)
                if tick % 10 == 0:
                    await self.check_decline_rate()
            except Exception:
                log.exception("housekeeping failed")

    async def forward_stored(self) -> None:
        if self.upstream is None:
            return
        entries = await self.writer.call(self.engine.saf_pending)
        if not entries or not self.upstream.up:
            return
        timeout = self.engine.config.upstream_timeout_ms / 1000
        for entry_id, message in entries:
            _, reply = await self.upstream.request(message, timeout)
            await self.writer.call(
                self.engine.saf_result, entry_id, reply.get("39", "96") if reply else None
            )
            if reply is None:
                break

    async def check_decline_rate(self) -> None:
        total, ratio = self.engine.metrics.decline_ratio()
        if total >= 20 and ratio > self.engine.config.decline_alert_ratio:
            await self.writer.call(
                self.engine.alert,
                "Gateway: decline rate jumped",
                f"{ratio:.0%} of the last {total} financial requests on node "
                f"{self.engine.node} were declined in the last minute.",
                f"gateway-declines:{self.engine.node}:{int(time.time() // 600)}",
            )

    async def metrics_http(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            body = self.engine.metrics.exposition(self.engine.node).encode()
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
                + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            pass
        finally:
            writer.close()


async def serve(config: GatewayConfig, *, ready: Any = None) -> None:
    """Run the gateway until SIGINT/SIGTERM."""
    engine = Engine(config)
    from cardops.risk.runtime import install as install_risk

    install_risk(engine)  # the risk participant (CARDOPS_RISK=off leaves it out)
    server = GatewayServer(engine)
    await server.start(config.host, config.port)
    # Everything loaded so far (modules, mappers, caches) lives as long as the process: out
    # of the collector's sight, and collections rarer, as each batch allocates many
    # short-lived objects that reference counting frees anyway (cycles are few).
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)
    if ready is not None:
        ready(server)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop()
