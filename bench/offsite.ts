/**
 * Benchmark of off-site, encrypted backups on the scale SQLite database (bench/.data/), the CLI run
 * as a user runs it (one child process per step, its peak RSS read by GNU time):
 * 1. `create --encrypt --offsite s3://…` (local s3rver) against `create` alone (target ≤ 1.3×);
 * 2. `restore` from `--dir s3://…` against `restore` from the local folder (target ≤ 1.5×);
 * 3. peak RSS of every step (target ≤ 256 MB).
 *
 *   npx tsx bench/offsite.ts [--dossiers 100000]
 */
import { spawn } from 'node:child_process'
import { mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { Command } from 'commander'
import S3rver from 's3rver'
import { runCommand } from '../scripts/lib/cli.ts'
import { generateKeyFile } from '../scripts/lib/encryption/keys.ts'
import { BENCH_DATA_DIR, scaleSqliteDatabase } from './_data.ts'

const UPLOAD_RATIO_TARGET = 1.3
const RESTORE_RATIO_TARGET = 1.5
const RSS_TARGET_MB = 256

const program = new Command('bench-offsite').option('--dossiers <n>', 'size of the scale database', (v) => Number(v.replaceAll('_', '')), 100_000)

runCommand<{ dossiers: number }>(program, async (options) => {
  const source = await scaleSqliteDatabase(options.dossiers, { log: (line) => console.log(line) })
  const work = join(BENCH_DATA_DIR, `offsite-run-${process.pid}`)
  mkdirSync(work, { recursive: true })
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: join(work, 's3'), configureBuckets: [{ name: 'ipm-bench', configs: [] }] })
  const { port } = (await server.run()) as { port: number }
  try {
    const keyFile = generateKeyFile(join(work, 'bench.key')).path
    const env = { ...process.env, NO_COLOR: '1', DATABASE_URL: `file:${source}`, AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${port}`, BACKUP_HISTORY_DIR: join(work, 'history') }
    // Asynchronous children: s3rver runs in this process and must keep answering meanwhile.
    const spawnAsync = (command: string, args: string[]) =>
      new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
        let stdout = ''
        let stderr = ''
        child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
        child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
        child.on('close', (status) => resolve({ status, stdout, stderr }))
      })
    const step = async (label: string, args: string[]) => {
      const t0 = performance.now()
      const result = await spawnAsync('/usr/bin/time', ['-f', '%M', process.execPath, '--import', 'tsx', 'scripts/advanced-backup.ts', '--quiet', '--formats', 'sql', ...args])
      const ms = performance.now() - t0
      if (result.status !== 0) throw new Error(`${label}: ${result.stderr.split("\n").filter((line) => /^(Error|Try)/.test(line)).join(" ")}`)
      const rssMb = Number(result.stderr.trim().split('\n').at(-1)) / 1024
      console.log(`${label.padEnd(44)} ${(ms / 1000).toFixed(2).padStart(7)} s   peak RSS ${rssMb.toFixed(0).padStart(4)} MB`)
      return { ms, rssMb }
    }
    const local = join(work, 'local')
    const plain = await step('create (local, not encrypted)', ['--dir', local, 'create'])
    const offsite = await step('create --encrypt --offsite s3 (local too)', ['--dir', join(work, 'local-enc'), '--key-file', keyFile, '--offsite', 's3://ipm-bench/prod', 'create', '--encrypt'])
    const list = await spawnAsync(process.execPath, ['--import', 'tsx', 'scripts/advanced-backup.ts', '--dir', local, 'list', '--json'])
    const localId = (JSON.parse(list.stdout) as { backups: { id: string }[] }).backups[0]!.id
    const remoteList = await spawnAsync(process.execPath, ['--import', 'tsx', 'scripts/advanced-backup.ts', '--dir', 's3://ipm-bench/prod', 'list', '--json'])
    const remoteId = (JSON.parse(remoteList.stdout) as { backups: { id: string }[] }).backups[0]!.id
    const fromLocal = await step('restore from the local folder', ['--dir', local, 'restore', localId, '--to', join(work, 'from-local.db'), '--yes'])
    const fromS3 = await step('restore from s3 (encrypted)', ['--dir', 's3://ipm-bench/prod', '--key-file', keyFile, 'restore', remoteId, '--to', join(work, 'from-s3.db'), '--yes'])
    const uploadRatio = offsite.ms / plain.ms
    const restoreRatio = fromS3.ms / fromLocal.ms
    const peak = Math.max(plain.rssMb, offsite.rssMb, fromLocal.rssMb, fromS3.rssMb)
    console.log(`\n${options.dossiers.toLocaleString('fr-FR')} dossiers`)
    console.log(`create+encrypt+upload / create : ${uploadRatio.toFixed(2)}× (cible ≤ ${UPLOAD_RATIO_TARGET}×) ${uploadRatio <= UPLOAD_RATIO_TARGET ? '✅' : '❌'}`)
    console.log(`restore s3 / restore local     : ${restoreRatio.toFixed(2)}× (cible ≤ ${RESTORE_RATIO_TARGET}×) ${restoreRatio <= RESTORE_RATIO_TARGET ? '✅' : '❌'}`)
    console.log(`peak RSS                       : ${peak.toFixed(0)} MB (cible ≤ ${RSS_TARGET_MB} MB) ${peak <= RSS_TARGET_MB ? '✅' : '❌'}`)
    return 0
  } finally {
    await server.close()
    rmSync(work, { recursive: true, force: true })
  }
})
