/**
 * A local HTTP server standing in for Slack, a webhook or an OTLP receiver: it records every request
 * (method, path, headers, raw body) and answers what `respond` says (200 by default). Bound to
 * 127.0.0.1 on a free port, closed after the test.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http'
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net'
import { defer } from './databases.ts'

type Cleanup = Parameters<typeof defer>[0]

export interface RecordedRequest {
  method: string
  path: string
  headers: IncomingHttpHeaders
  body: Buffer
}

export interface Reply {
  status: number
  headers?: Record<string, string>
  body?: string
}

export interface RecordingServer {
  url: string
  requests: RecordedRequest[]
  /** Resolves once `count` requests have arrived. */
  waitFor(count: number): Promise<void>
}

export async function startRecordingServer(t: Cleanup, respond: (request: RecordedRequest, index: number) => Reply = () => ({ status: 200 })): Promise<RecordingServer> {
  const requests: RecordedRequest[] = []
  const waiters: { count: number; resolve: () => void }[] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const request = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) }
      requests.push(request)
      const reply = respond(request, requests.length - 1)
      res.writeHead(reply.status, reply.headers).end(reply.body ?? '')
      for (const waiter of waiters.filter((w) => requests.length >= w.count)) waiter.resolve()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  defer(t, () => new Promise<void>((resolve) => {
    server.close(() => resolve())
    server.closeAllConnections()
  }))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    waitFor: (count) => (requests.length >= count ? Promise.resolve() : new Promise((resolve) => waiters.push({ count, resolve }))),
  }
}

/** A port nothing listens on (taken, then released). */
export async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/**
 * A TCP server on 127.0.0.1 that accepts every connection and never answers (no HTTP status, no
 * SMTP greeting): the channel that hangs. `connections` counts what it accepted.
 */
export async function startSilentServer(t: Cleanup): Promise<{ url: string; port: number; connections: () => number }> {
  const sockets = new Set<Socket>()
  let accepted = 0
  const server = createNetServer((socket) => {
    accepted++
    sockets.add(socket)
    socket.on('error', () => {})
    socket.on('close', () => sockets.delete(socket))
    socket.resume()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  defer(t, () => new Promise<void>((resolve) => {
    for (const socket of sockets) socket.destroy()
    server.close(() => resolve())
  }))
  const { port } = server.address() as AddressInfo
  return { url: `http://127.0.0.1:${port}`, port, connections: () => accepted }
}
