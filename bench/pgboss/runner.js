// pg-boss's side of bench/job_queues.py, which runs it with NODE_PATH pointing at the pg-boss 10
// it installed from package.json.
//
//   node runner.js send URL JOBS   the pgboss schema, queue "store", JOBS jobs inserted in bulk
//   node runner.js work URL        prints "ready", waits for a line on stdin, then fetches
//                                  batches of 100 until a fetch comes back empty; prints
//                                  {"done": jobs, "ended": CLOCK_MONOTONIC seconds}
//
// A batch's INSERTs (one per job, into bench_done, made by bench/job_queues.py) and its
// `complete` share one transaction: a job is done exactly when its row is written.
'use strict'

const PgBoss = require('pg-boss')
const { Pool } = require('pg')

const QUEUE = 'store'
const BATCH = 100

function boss (url, options) {
  const instance = new PgBoss({ connectionString: url, supervise: false, schedule: false, ...options })
  instance.on('error', (error) => { console.error(error); process.exitCode = 1 })
  return instance
}

async function send (url, jobs) {
  const sender = boss(url, {})
  await sender.start() // creates the schema
  await sender.createQueue(QUEUE)
  await sender.insert(Array.from({ length: jobs }, (_, n) => ({ name: QUEUE, data: { n } })))
  await sender.stop()
}

function oneLine () {
  return new Promise((resolve) => process.stdin.once('data', () => { process.stdin.pause(); resolve() }))
}

async function work (url) {
  const worker = boss(url, { migrate: false })
  await worker.start()
  const pool = new Pool({ connectionString: url, max: 1 })
  const client = await pool.connect()
  // pg-boss 10's complete(name, ids, data, options): `db` runs its UPDATE on our transaction.
  const inTransaction = { db: { executeSql: (text, values) => client.query(text, values) } }
  console.log('ready')
  await oneLine()
  let done = 0
  for (;;) {
    const jobs = await worker.fetch(QUEUE, { batchSize: BATCH })
    if (jobs.length === 0) break
    await client.query('BEGIN')
    for (const job of jobs) {
      await client.query('INSERT INTO bench_done (job) VALUES ($1)', [job.data.n])
    }
    await worker.complete(QUEUE, jobs.map((job) => job.id), null, inTransaction)
    await client.query('COMMIT')
    done += jobs.length
  }
  const ended = Number(process.hrtime.bigint()) / 1e9 // CLOCK_MONOTONIC, as Python's monotonic()
  console.log(JSON.stringify({ done, ended }))
  client.release()
  await pool.end()
  await worker.stop()
}

const [command, url, jobs] = process.argv.slice(2)
const run = command === 'send' ? send(url, Number(jobs)) : work(url)
run.catch((error) => { console.error(error); process.exit(1) })
