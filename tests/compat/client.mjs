// Drive a running Wisp server with the real `openwhisk` npm client.
//
//   node tests/compat/client.mjs http://127.0.0.1:PORT uuid:key
//
// Prints one JSON object {ok, passed, failures, results} on stdout and exits 1 when
// any check failed (2 on bad usage). Entity names carry a random suffix so the script
// can run twice against the same server.

import openwhisk from 'openwhisk'
import { randomBytes } from 'node:crypto'

const [apihost, apiKey] = process.argv.slice(2)
if (!apihost || !apiKey || !apiKey.includes(':')) {
  console.error('usage: node client.mjs http://HOST:PORT uuid:key')
  process.exit(2)
}

const POLL_MS = 60_000
const suffix = randomBytes(3).toString('hex')
const PKG = `compat-${suffix}`
const IN_PKG = `${PKG}/greet`
const TOP = `echo-${suffix}`
const FAILING = `fails-${suffix}`

const GREET = `def main(args):
    greeting = args.get("greeting", "hello")
    name = args.get("name", "world")
    print(f"{greeting} {name}")
    return {"message": f"{greeting} {name}", "greeting": greeting}
`
const ECHO = `def main(args):
    print("echo called")
    return {"args": args}
`
const FAIL = `def main(args):
    print("about to fail")
    return {"error": "boom"}
`

const ow = openwhisk({ apihost, api_key: apiKey, namespace: '_' })

const passed = []
const failures = []
const results = {}

class CheckFailed extends Error {}

function expect (condition, message, detail) {
  if (!condition) {
    const suffix = detail === undefined ? '' : `: ${JSON.stringify(detail)}`
    throw new CheckFailed(message + suffix)
  }
}

function describe (err) {
  if (err instanceof CheckFailed) return err.message
  // OpenWhiskError: message, statusCode and the response body in .error
  return `${err && err.name}: ${err && err.message}` +
    (err && err.statusCode ? ` (HTTP ${err.statusCode}, body ${JSON.stringify(err.error)})` : '')
}

async function step (name, fn) {
  try {
    const value = await fn()
    if (value !== undefined) results[name] = value
    passed.push(name)
    return value
  } catch (err) {
    failures.push({ step: name, error: describe(err) })
    return undefined
  }
}

// Awaits a promise expected to reject; returns the OpenWhiskError.
async function rejection (promise, what) {
  let value
  try {
    value = await promise
  } catch (err) {
    return err
  }
  throw new CheckFailed(`${what} resolved instead of rejecting: ${JSON.stringify(value)}`)
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

// Retries `fn` while it rejects with a 404 (the record is not written yet).
async function until404Gone (fn, what) {
  const deadline = Date.now() + POLL_MS
  for (;;) {
    try {
      return await fn()
    } catch (err) {
      if (err.statusCode !== 404 || Date.now() > deadline) {
        throw new CheckFailed(`${what}: ${describe(err)}`)
      }
    }
    await sleep(200)
  }
}

function param (params, key) {
  const found = (params || []).find(p => p.key === key)
  return found && found.value
}

async function main () {
  await step('packages.update', async () => {
    const pkg = await ow.packages.update({
      name: PKG,
      package: { parameters: [{ key: 'greeting', value: 'hi' }], annotations: [] }
    })
    expect(pkg.name === PKG, 'package name', pkg.name)
    expect(typeof pkg.namespace === 'string' && pkg.namespace.length > 0, 'package namespace', pkg)
    expect(typeof pkg.version === 'string', 'package version', pkg.version)
    expect(param(pkg.parameters, 'greeting') === 'hi', 'package parameters', pkg.parameters)
    return { namespace: pkg.namespace, version: pkg.version }
  })

  await step('packages.create existing (409)', async () => {
    const err = await rejection(ow.packages.create({ name: PKG, package: {} }), 'create existing package')
    expect(err.statusCode === 409, 'status', err.statusCode)
    return { statusCode: err.statusCode }
  })

  await step('actions.update in package', async () => {
    const action = await ow.actions.update({ name: IN_PKG, action: GREET, kind: 'python:default' })
    expect(action.name === 'greet', 'action name', action.name)
    expect(action.namespace.split('/')[1] === PKG, 'namespace names the package', action.namespace)
    expect(action.exec && action.exec.kind.startsWith('python'), 'exec kind', action.exec)
    return { namespace: action.namespace, kind: action.exec.kind, version: action.version }
  })

  await step('actions.update default package', async () => {
    const action = await ow.actions.update({
      name: TOP,
      action: ECHO,
      kind: 'python:default',
      params: { bound: 'yes' },
      annotations: { description: 'compat test' }
    })
    expect(action.name === TOP, 'action name', action.name)
    expect(!action.namespace.includes('/'), 'default-package namespace has no package', action.namespace)
    expect(param(action.parameters, 'bound') === 'yes', 'parameters', action.parameters)
    expect(param(action.annotations, 'description') === 'compat test', 'annotations', action.annotations)
    return { namespace: action.namespace }
  })

  await step('actions.update failing', async () => {
    await ow.actions.update({ name: FAILING, action: FAIL, kind: 'python:default' })
  })

  await step('actions.update again bumps version', async () => {
    const before = await ow.actions.get({ name: TOP, code: false })
    // Wisp keeps the version on a PUT that changes nothing (OpenWhisk bumps it on
    // every PUT), so this update changes a parameter.
    const changed = await ow.actions.update({ name: TOP, params: { bound: 'changed' } })
    expect(changed.version !== before.version, 'version changed', [before.version, changed.version])
    expect(changed.exec.kind.startsWith('python:'), 'update without code keeps exec', changed.exec)
    const after = await ow.actions.update({ name: TOP, params: { bound: 'yes' } })
    expect(param(after.parameters, 'bound') === 'yes', 'parameters', after.parameters)
    return { before: before.version, changed: changed.version, after: after.version }
  })

  await step('actions.list', async () => {
    const all = await ow.actions.list({ limit: 100 })
    expect(Array.isArray(all), 'list is an array', all)
    const names = all.map(a => `${a.namespace}/${a.name}`)
    const greet = all.find(a => a.name === 'greet' && a.namespace.endsWith(`/${PKG}`))
    const top = all.find(a => a.name === TOP)
    expect(greet, 'package action listed', names)
    expect(top, 'default-package action listed', names)
    for (const a of [greet, top]) {
      expect(param(a.annotations, 'exec'), 'list item carries the exec annotation', a.annotations)
    }
    return { count: all.length, names }
  })

  await step('actions.get', async () => {
    const action = await ow.actions.get(IN_PKG)
    expect(action.exec.code === GREET, 'code round-trips', action.exec.code)
    expect(action.exec.kind.startsWith('python:'), 'kind', action.exec.kind)
    const noCode = await ow.actions.get({ name: IN_PKG, code: false })
    expect(noCode.exec.code === undefined, 'code=false omits code', noCode.exec)
    return { kind: action.exec.kind, limits: action.limits }
  })

  await step('packages.get', async () => {
    const pkg = await ow.packages.get(PKG)
    const names = (pkg.actions || []).map(a => a.name)
    expect(names.includes('greet'), 'package lists its actions', pkg.actions)
    return { actions: names }
  })

  await step('actions.invoke blocking', async () => {
    const activation = await ow.actions.invoke({ name: IN_PKG, blocking: true, params: { name: 'bob' } })
    expect(/^[0-9a-f]{32}$/.test(activation.activationId), 'activationId', activation.activationId)
    expect(activation.response && activation.response.success === true, 'success', activation.response)
    expect(activation.response.status === 'success', 'status', activation.response)
    expect(activation.response.result.message === 'hi bob', 'package parameter applied', activation.response.result)
    expect(activation.statusCode === 0, 'statusCode', activation.statusCode)
    expect(Array.isArray(activation.logs), 'logs', activation.logs)
    return { activationId: activation.activationId, result: activation.response.result, duration: activation.duration }
  })

  await step('namespaces.list + fully qualified invoke', async () => {
    const namespaces = await ow.namespaces.list()
    expect(Array.isArray(namespaces) && typeof namespaces[0] === 'string', 'namespaces', namespaces)
    const [ns] = namespaces
    const activation = await ow.actions.invoke({ name: `/${ns}/${IN_PKG}`, blocking: true, params: { name: 'fq' } })
    expect(activation.response.result.message === 'hi fq', 'result', activation.response)
    return { namespaces, result: activation.response.result }
  })

  await step('actions.invoke blocking result', async () => {
    const result = await ow.actions.invoke({ name: TOP, blocking: true, result: true, params: { x: 1 } })
    expect(result.args && result.args.x === 1, 'parameter passed', result)
    expect(result.args.bound === 'yes', 'bound parameter applied', result)
    return result
  })

  let asyncId
  await step('actions.invoke non-blocking', async () => {
    const accepted = await ow.actions.invoke({ name: IN_PKG, params: { name: 'async' } })
    expect(/^[0-9a-f]{32}$/.test(accepted.activationId), 'activationId', accepted)
    asyncId = accepted.activationId
    return accepted
  })

  await step('activations.get', async () => {
    expect(asyncId, 'needs the non-blocking activation id')
    const record = await until404Gone(() => ow.activations.get(asyncId), 'activations.get')
    expect(record.activationId === asyncId, 'activationId', record.activationId)
    expect(record.response.result.message === 'hi async', 'result', record.response)
    // OpenWhisk records the bare action name; Wisp records 'pkg/name'. The path
    // annotation is what clients read for the full name, so either is accepted.
    expect(record.name.split('/').pop() === 'greet', 'name', record.name)
    const path = param(record.annotations, 'path')
    expect(typeof path === 'string' && path.endsWith(`${PKG}/greet`), 'path annotation', record.annotations)
    return { name: record.name, namespace: record.namespace, path, statusCode: record.statusCode }
  })

  await step('activations.result', async () => {
    expect(asyncId, 'needs the non-blocking activation id')
    const result = await until404Gone(() => ow.activations.result(asyncId), 'activations.result')
    expect(result.success === true && result.status === 'success', 'status', result)
    expect(result.result.message === 'hi async', 'result', result)
    return result
  })

  await step('activations.logs', async () => {
    expect(asyncId, 'needs the non-blocking activation id')
    const logs = await until404Gone(() => ow.activations.logs({ activationId: asyncId }), 'activations.logs')
    expect(Array.isArray(logs.logs), 'logs array', logs)
    expect(logs.logs.some(line => line.includes('stdout') && line.includes('hi async')), 'printed line', logs.logs)
    return logs
  })

  await step('activations.list', async () => {
    const all = await ow.activations.list({ limit: 50 })
    expect(Array.isArray(all), 'list is an array', all)
    expect(all.some(a => a.activationId === asyncId), 'lists the non-blocking activation', all.map(a => a.activationId))
    const named = await ow.activations.list({ name: IN_PKG, limit: 50 })
    expect(named.length >= 2 && named.every(a => a.name.split('/').pop() === 'greet'), 'name filter', named.map(a => a.name))
    const docs = await ow.activations.list({ name: IN_PKG, docs: true, limit: 1 })
    expect(docs.length === 1 && docs[0].response, 'docs=true carries the response', docs)
    return { count: all.length, named: named.length }
  })

  await step('actions.invoke error result (502)', async () => {
    const err = await rejection(ow.actions.invoke({ name: FAILING, blocking: true }), 'failing invoke')
    expect(err.statusCode === 502, 'status', err.statusCode)
    const record = err.error
    expect(record && /^[0-9a-f]{32}$/.test(record.activationId), 'error body is the activation', record)
    expect(record.response.success === false, 'success false', record.response)
    expect(record.response.status === 'application error', 'status', record.response)
    expect(record.response.result.error === 'boom', 'result', record.response)
    expect(err.message.includes('boom'), 'message names the error', err.message)
    return { statusCode: err.statusCode, message: err.message, status: record.response.status }
  })

  await step('actions.invoke error with result:true (502)', async () => {
    const err = await rejection(ow.actions.invoke({ name: FAILING, blocking: true, result: true }), 'failing invoke')
    expect(err.statusCode === 502, 'status', err.statusCode)
    expect(err.error.response.result.error === 'boom', 'result', err.error)
    return { statusCode: err.statusCode }
  })

  await step('actions.invoke missing (404)', async () => {
    const err = await rejection(ow.actions.invoke({ name: `missing-${suffix}`, blocking: true }), 'missing invoke')
    expect(err.statusCode === 404, 'status', err.statusCode)
    return { statusCode: err.statusCode, message: err.message }
  })

  // API-gateway routes through OpenWhisk's apimgmt web actions (ow.routes).
  const BASE = `/compat-${suffix}`
  let gwApiUrl
  await step('routes.create', async () => {
    const api = await ow.routes.create({ basepath: BASE, relpath: '/items/{id}', operation: 'GET', action: TOP })
    const value = api && api.value
    expect(value && typeof value.gwApiUrl === 'string', 'gwApiUrl', api)
    const op = value.apidoc.paths['/items/{id}'].get
    expect(op['x-openwhisk'].action === TOP, 'x-openwhisk names the action', op)
    expect(value.apidoc.basePath === BASE, 'basePath', value.apidoc)
    gwApiUrl = value.gwApiUrl
    return { gwApiUrl, id: api.id }
  })

  await step('routes.list', async () => {
    const listed = await ow.routes.list({ basepath: BASE })
    expect(Array.isArray(listed.apis) && listed.apis.length === 1, 'one API', listed)
    const paths = Object.keys(listed.apis[0].value.apidoc.paths)
    expect(paths.length === 1 && paths[0] === '/items/{id}', 'its path', paths)
    const got = await ow.routes.get({ basepath: BASE })
    expect(got.apis.length === 1 && got.apis[0].value.gwApiUrl === gwApiUrl, 'routes.get', got)
    const all = await ow.routes.list()
    expect(all.apis.some(a => a.value.apidoc.basePath === BASE), 'listed without a filter', all)
    return { paths }
  })

  await step('routes call through gwApiUrl', async () => {
    expect(gwApiUrl, 'needs the created route')
    const response = await fetch(`${gwApiUrl}/items/42?x=1`)
    const body = await response.json()
    expect(response.status === 200, 'status', [response.status, body])
    expect(body.args && body.args.id === '42' && body.args.bound === 'yes', 'function ran', body)
    return { status: response.status, body }
  })

  await step('routes.delete', async () => {
    await ow.routes.delete({ basepath: BASE, relpath: '/items/{id}', operation: 'GET' })
    const listed = await ow.routes.list({ basepath: BASE })
    expect(listed.apis.length === 0, 'gone from the list', listed)
    const response = await fetch(`${gwApiUrl}/items/42`)
    expect(response.status === 404, 'route no longer served', response.status)
    const err = await rejection(ow.routes.delete({ basepath: BASE }), 'delete a deleted route')
    expect(err.statusCode === 404, 'status', err.statusCode)
    return { status: response.status }
  })

  await step('actions.delete', async () => {
    for (const name of [IN_PKG, TOP, FAILING]) {
      const deleted = await ow.actions.delete(name)
      expect(deleted && deleted.name === name.split('/').pop(), 'delete answers the action', deleted)
    }
    const err = await rejection(ow.actions.get(TOP), 'get deleted action')
    expect(err.statusCode === 404, 'get after delete', err.statusCode)
  })

  await step('packages.delete', async () => {
    const deleted = await ow.packages.delete(PKG)
    expect(deleted && deleted.name === PKG, 'delete answers the package', deleted)
    const err = await rejection(ow.packages.get(PKG), 'get deleted package')
    expect(err.statusCode === 404, 'get after delete', err.statusCode)
  })

  await step('wrong api_key (401)', async () => {
    const [uuid] = apiKey.split(':')
    const bad = openwhisk({ apihost, api_key: `${uuid}:not-the-key`, namespace: '_' })
    const err = await rejection(bad.actions.list(), 'list with a wrong key')
    expect(err.statusCode === 401, 'status', err.statusCode)
    expect(/HTTP 401/.test(err.message), 'message', err.message)
    return { statusCode: err.statusCode, message: err.message }
  })

  const ok = failures.length === 0
  process.stdout.write(JSON.stringify({ ok, passed, failures, results }) + '\n')
  process.exitCode = ok ? 0 : 1
}

main().catch(err => {
  failures.push({ step: 'script', error: describe(err) })
  process.stdout.write(JSON.stringify({ ok: false, passed, failures, results }) + '\n')
  process.exitCode = 1
})
