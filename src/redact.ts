// Secret masking: deciding what is secret in data the application owns, and
// masking it. One set of rules for the configuration, command lines (argv,
// execArgv, NODE_OPTIONS, child processes), green-thread descriptions,
// error messages and user sections.
//
// A value is secret when
// - its key says so: a secret word anywhere in it (`password`, `apiKey`,
//   `DB_PASS`, …) or a pattern of the application's `secretKeys`;
// - its path says so: a generic leaf (`key`, `value`, `id`, …) under a group
//   that names a credential or a service (`stripe.key`, `api.key`,
//   `encryption.key`, `githubAppId`), or a `value` beside a `name` that is a
//   secret key (`{ name: 'X-Api-Key', value: … }`);
// - its shape says so: a token with a known prefix (AWS, GitHub, Stripe,
//   Slack, npm, SendGrid, JWTs, PEM private keys, …), whatever its key.
// In free text only the secret part goes, so the text stays useful:
// `postgres://***@host/db`, `password=***`, `-p***`.

export const MASK = '***'

export type SecretKeys = ReadonlyArray<string | RegExp>

// ---------------------------------------------------------------- settings

interface Settings {
  /** The application's secretKeys, for every section. */
  secretKeys: SecretKeys
  /** Token shapes masked in user sections' strings. */
  sectionText: boolean
}

let settings: Settings = { secretKeys: [], sectionText: true }

/** Set at setup (and in the reporter environment, from setup's data): the rules of every report that follows. */
export function configureRedaction (next: Partial<Settings>): void {
  settings = { ...settings, ...next }
}

export function redactionSettings (): Readonly<Settings> {
  return settings
}

/** secretKeys as plain data, for the reporter environment. */
export type SerializedKey = string | { source: string, flags: string }

export function serializeKeys (keys: SecretKeys): SerializedKey[] {
  return keys.map((k) => typeof k === 'string' ? k : { source: k.source, flags: k.flags })
}

export function parseKeys (keys: readonly SerializedKey[] | undefined): Array<string | RegExp> {
  return (keys ?? []).map((k) => typeof k === 'string' ? k : new RegExp(k.source, k.flags))
}

// ---------------------------------------------------------------- keys

// Compared against keys lower-cased with separators removed, so `api key`,
// `api_key`, `api-key` and `apiKey` all read `apikey`.
const SECRET_WORDS = [
  'password', 'passwd', 'passphrase', 'pwd', 'secret', 'token', 'apikey',
  'privatekey', 'credential', 'cookie', 'session', 'signingkey', 'encryptionkey',
  'masterkey', 'accesskey', 'accountkey', 'sharedaccesskey'
]
// Too short for a substring test (`unauthorized`, `bypass`): `auth…` must
// start a word of the key (`authorization`, `x-auth-token`, `basicAuth`),
// `pass` must be one (`DB_PASS`).
const SECRET_WORD = /^(?:auth|pass$)/
// A signature in a query or a header (`X-Amz-Signature`, `sig`) is the credential.
const SECRET_LAST_WORDS = new Set(['sig', 'signature'])
// Keys that describe a secret rather than hold it: `secretName`,
// `DB_PASSWORD_FILE`, `tokenUrl`, `sessionTtl`, `--no-auth-warning`. Their
// values are still masked as text.
const DESCRIBING_WORDS = new Set(['name', 'names', 'file', 'path', 'dir', 'url', 'uri', 'endpoint', 'type', 'algorithm',
  'length', 'ttl', 'expiry', 'expires', 'enabled', 'required', 'timeout', 'count', 'warning'])

// A leaf named only generically is secret under a credential or a service.
const GENERIC_LEAVES = new Set(['key', 'keys', 'value', 'val', 'id', 'secret', 'pass', 'code', 'pin', 'sig', 'signature', 'salt', 'hash', 'sid'])
// Groups that name a credential, or a service that issues one.
const CREDENTIAL_GROUPS = new Set([
  'api', 'apis', 'encryption', 'decryption', 'signing', 'crypto', 'cipher', 'hmac', 'jwt', 'jws', 'jwe', 'oauth', 'oauth2',
  'oidc', 'saml', 'sso', 'webhook', 'webhooks', 'license', 'licence', 'master', 'access', 'private', 'keyring', 'keystore',
  'vault', 'kms', 'recaptcha', 'captcha', 'hcaptcha', 'turnstile',
  'aws', 'gcp', 'google', 'azure', 'stripe', 'slack', 'github', 'gitlab', 'bitbucket', 'npm', 'twilio', 'sendgrid', 'mailgun',
  'mailchimp', 'mandrill', 'postmark', 'sparkpost', 'mailjet', 'brevo', 'sendinblue', 'paypal', 'braintree', 'square', 'adyen',
  'shopify', 'openai', 'anthropic', 'huggingface', 'cohere', 'datadog', 'newrelic', 'algolia', 'pusher', 'firebase', 'heroku',
  'cloudflare', 'digitalocean', 'discord', 'telegram', 'okta', 'auth0', 'mixpanel', 'segment', 'mapbox', 'facebook', 'twitter',
  'dropbox', 'nexmo', 'vonage', 'plaid', 'contentful', 'netlify', 'vercel', 'dockerhub', 'circleci', 'snyk', 'pagerduty',
  'launchdarkly', 'rollbar', 'bugsnag', 'atlassian', 'jira', 'linear', 'notion', 'airtable', 'hubspot', 'salesforce', 'zendesk',
  'intercom', 'sentry', 'doppler', 'pulumi', 'terraform', 'grafana', 'supabase', 'clerk', 'resend', 'klaviyo', 'zoom'
])

// What a key's words say, computed once per key: a report judges the same
// keys over and over. Bounded: cleared when full.
const MAX_CACHED = 10_000
const byWords = new Map<string, KeyWords>()

interface KeyWords {
  /** A secret word, or a secret last word, and no describing last word. */
  secret: boolean
  /** The last word is a generic leaf. */
  generic: boolean
  /** A word names a credential or a service. */
  credential: boolean
  /** The words before the last name one. */
  credentialBeforeLast: boolean
}

function keyWords (key: string): KeyWords {
  let w = byWords.get(key)
  if (w !== undefined) return w
  const all = words(key)
  const last = all[all.length - 1]
  const describing = last === undefined || DESCRIBING_WORDS.has(last) || (all[0] === 'no' && all.length > 1)
  const squashed = all.join('')
  const credentialBeforeLast = all.slice(0, -1).some((x) => CREDENTIAL_GROUPS.has(x))
  w = {
    secret: !describing && (SECRET_WORDS.some((s) => squashed.includes(s)) || all.some((x) => SECRET_WORD.test(x)) || SECRET_LAST_WORDS.has(last)),
    generic: last !== undefined && GENERIC_LEAVES.has(last),
    credential: credentialBeforeLast || (last !== undefined && CREDENTIAL_GROUPS.has(last)),
    credentialBeforeLast
  }
  if (byWords.size >= MAX_CACHED) byWords.clear()
  byWords.set(key, w)
  return w
}

function words (key: string): string[] {
  return key.replace(/([a-z0-9])([A-Z])/g, '$1 $2').replace(/([A-Z])([A-Z][a-z])/g, '$1 $2')
    .toLowerCase().split(/[^a-z0-9]+/).filter((w) => w !== '')
}

/** Whether a key or path matches one of the application's secretKeys: strings as case-insensitive substrings, RegExps tested. */
export function matchesSecretKeys (key: string, extra: SecretKeys): boolean {
  const lower = key.toLowerCase()
  return extra.some((x) => {
    if (typeof x === 'string') return x !== '' && lower.includes(x.toLowerCase())
    if (!(x instanceof RegExp)) return false
    // Tested from the start whatever lastIndex a /g or /y pattern holds.
    x.lastIndex = 0
    const hit = x.test(key)
    x.lastIndex = 0
    return hit
  })
}

/** Whether a key names a secret by itself; extra: the application's secretKeys. */
export function isSecretKey (key: string, extra: SecretKeys = settings.secretKeys): boolean {
  try {
    return keyWords(key).secret || matchesSecretKeys(key, extra)
  } catch {
    return true // when in doubt, mask
  }
}

/**
 * Whether the value at a path is secret: its key names a secret, its path
 * matches secretKeys, or it is a generic leaf (`key`, `id`, `value`, …; the
 * last word of the key) under a credential or service word, in its groups
 * or in the key itself (`stripe.key`, `api.key`, `stripeKey`).
 */
export function isSecretPath (groups: readonly string[], key: string, extra: SecretKeys = settings.secretKeys): boolean {
  try {
    if (isSecretKey(key, extra)) return true
    if (extra.length > 0 && groups.length > 0 && matchesSecretKeys([...groups, key].join('.'), extra)) return true
    const own = keyWords(key)
    if (!own.generic) return false
    return own.credentialBeforeLast || groups.some((g) => keyWords(g).credential)
  } catch {
    return true
  }
}

// Keys whose sibling `value` holds what they name: `{ name: 'X-Api-Key', value: … }`, Kubernetes' `env` lists.
const NAME_KEYS = ['name', 'key', 'header', 'Name', 'Key', 'Header']
const VALUE_KEYS = new Set(['value', 'val', 'Value'])

/** Whether an object's `value` is secret because its `name` (or `key`, `header`) is a secret key. read gives a sibling's value as data. */
export function namedSecret (read: (key: string) => unknown, key: string, extra: SecretKeys = settings.secretKeys): boolean {
  if (!VALUE_KEYS.has(key)) return false
  for (const k of NAME_KEYS) {
    const name = read(k)
    if (typeof name === 'string' && name.length <= 200 && isSecretPath([], name, extra)) return true
  }
  return false
}

// ---------------------------------------------------------------- shapes

// Tokens whose shape says what they are (after the public rule lists of
// gitleaks, trufflehog and secretlint). Each starts at a boundary and bounds
// its quantifiers, so that none goes quadratic on long input. Publishable
// keys (Stripe's `pk_`, Mapbox's `pk.`) are public by design: left alone.
const TOKEN_SHAPES: string[] = [
  String.raw`(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA|ASCA)[0-9A-Z]{16}`, // AWS key ids
  String.raw`gh[pousr]_[A-Za-z0-9]{20,255}`, String.raw`ghs_\d{1,12}_[A-Za-z0-9_-]{20,255}(?:\.[A-Za-z0-9_-]{10,1024}){0,2}`, String.raw`github_pat_[A-Za-z0-9_]{20,255}`, // GitHub
  String.raw`gl(?:pat|ptt|dt|rt|cbt|imt|agent|oas|ft|soat)-[A-Za-z0-9_-]{16,255}`, String.raw`GR1348941[A-Za-z0-9_-]{20,255}`, // GitLab
  String.raw`xox[abeposr]-[A-Za-z0-9-]{10,255}`, String.raw`xapp-\d-[A-Za-z0-9-]{10,255}`, // Slack
  String.raw`(?:sk|rk)_(?:live|test|prod)_[A-Za-z0-9]{10,255}`, String.raw`whsec_[A-Za-z0-9+/=]{16,255}`, // Stripe
  String.raw`SG\.[A-Za-z0-9_-]{16,64}\.[A-Za-z0-9_-]{16,128}`, // SendGrid
  String.raw`SK[0-9a-fA-F]{32}`, // Twilio API keys
  String.raw`npm_[A-Za-z0-9]{36,255}`, String.raw`pypi-AgE[A-Za-z0-9_-]{50,1000}`, String.raw`rubygems_[a-f0-9]{48}`, // registries
  String.raw`AIza[0-9A-Za-z_-]{35}`, String.raw`GOCSPX-[A-Za-z0-9_-]{28}`, String.raw`ya29\.[0-9A-Za-z_-]{20,2048}`, String.raw`1//0[0-9A-Za-z_-]{40,512}`, // Google
  String.raw`[a-zA-Z0-9_~.]{3}\dQ~[a-zA-Z0-9_~.-]{31,34}`, // Azure AD client secrets
  String.raw`sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,255}T3BlbkFJ[A-Za-z0-9_-]{20,255}`, String.raw`sk-proj-[A-Za-z0-9_-]{40,255}`, // OpenAI
  String.raw`sk-ant-(?:api|admin)\d{2}-[A-Za-z0-9_-]{40,255}`, // Anthropic
  String.raw`hf_[A-Za-z]{30,40}`, // Hugging Face
  String.raw`do[por]_v1_[a-f0-9]{64}`, // DigitalOcean
  String.raw`dp\.(?:pt|st|sa|ct|scim|audit)\.[A-Za-z0-9]{40,44}`, // Doppler
  String.raw`dapi[a-h0-9]{32}`, // Databricks
  String.raw`PMAK-[a-f0-9]{24}-[a-f0-9]{34}`, // Postman
  String.raw`pul-[a-f0-9]{40}`, // Pulumi
  String.raw`glc_[A-Za-z0-9+/]{32,400}={0,2}`, String.raw`glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}`, // Grafana
  String.raw`lin_api_[A-Za-z0-9]{40}`, // Linear
  String.raw`NRAK-[A-Z0-9]{27}`, // New Relic
  String.raw`dt0c01\.[A-Z0-9]{24}\.[A-Z0-9]{64}`, // Dynatrace
  String.raw`sntry[su]_[A-Za-z0-9+/=_]{40,512}`, // Sentry auth tokens
  String.raw`shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}`, // Shopify
  String.raw`sq0(?:atp|csp)-[0-9A-Za-z_-]{22,43}`, String.raw`EAAA[0-9A-Za-z_-]{60}`, // Square
  String.raw`access_token\$production\$[0-9a-z]{16}\$[0-9a-f]{32}`, // PayPal Braintree
  String.raw`key-[0-9a-f]{32}`, // Mailgun
  String.raw`[0-9a-f]{32}-us\d{1,2}`, // Mailchimp
  String.raw`xkeysib-[a-f0-9]{64}-[A-Za-z0-9]{16}`, // Brevo
  String.raw`dckr_pat_[A-Za-z0-9_-]{27}`, // Docker Hub
  String.raw`hv[sbr]\.[A-Za-z0-9_-]{24,255}`, // HashiCorp Vault (service, batch, recovery)
  String.raw`gsk_[A-Za-z0-9]{48,64}`, // Groq
  String.raw`ops_eyJ[A-Za-z0-9+/]{100,4096}={0,2}`, // 1Password service accounts
  String.raw`vc[pkiar]_[A-Za-z0-9]{24,64}`, // Vercel
  String.raw`figd_[A-Za-z0-9_-]{40,64}`, // Figma
  String.raw`cf(?:ut|at|k)_[A-Za-z0-9]{40,64}`, // Cloudflare user, account and global API tokens
  String.raw`tskey-[a-z]{3,10}-[A-Za-z0-9]{6,20}-[A-Za-z0-9]{20,64}`, // Tailscale
  String.raw`[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_=-]{60,70}`, // Terraform Cloud
  String.raw`ATATT3[A-Za-z0-9_=-]{100,255}`, // Atlassian
  String.raw`sbp_[a-f0-9]{40}`, // Supabase
  String.raw`pscale_(?:tkn|pw|oauth)_[A-Za-z0-9_=.-]{32,64}`, // PlanetScale
  String.raw`CFPAT-[A-Za-z0-9_-]{43}`, // Contentful
  String.raw`LTAI[A-Za-z0-9]{20}`, // Alibaba Cloud
  String.raw`AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}`, // age
  String.raw`\d{8,10}:AA[0-9A-Za-z_-]{33}`, // Telegram bots
  String.raw`[MNO][A-Za-z0-9_-]{23,25}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,38}`, // Discord bots
  String.raw`sk\.eyJ[A-Za-z0-9_-]{20,1024}\.[A-Za-z0-9_-]{10,255}`, // Mapbox secret tokens
  String.raw`EZ[AT]K[A-Za-z0-9]{54}`, // EasyPost
  String.raw`rdme_[a-z0-9]{70}`, // ReadMe
  String.raw`pnu_[A-Za-z0-9]{36}`, // Prefect
  String.raw`(?:secret|ntn)_[A-Za-z0-9]{43,46}`, // Notion
  String.raw`pat[A-Za-z0-9]{14}\.[a-f0-9]{64}`, // Airtable
  String.raw`FLWSECK(?:_TEST)?-[a-h0-9]{32}-X`, // Flutterwave
  String.raw`re_[A-Za-z0-9]{8}_[A-Za-z0-9]{24}`, // Resend
  // JWTs: three base64url parts, the first two JSON objects (`eyJ`).
  String.raw`eyJ[A-Za-z0-9_-]{4,4096}\.eyJ[A-Za-z0-9_-]{4,8192}\.[A-Za-z0-9_-]{0,4096}`
]
// Webhook URLs are themselves the credential.
const WEBHOOK_URLS = String.raw`https://(?:hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_-]{20,255}|(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/\d{5,30}/[A-Za-z0-9_-]{20,255}|[a-z0-9-]{1,64}\.webhook\.office\.com/webhookb2/[A-Za-z0-9@/_-]{20,512})`
// Starts only where no letter or digit precedes, so a shape inside a longer
// word (a hash, a path) is not taken for one.
const TOKEN = new RegExp(String.raw`(?<![A-Za-z0-9])(?:${TOKEN_SHAPES.join('|')})|${WEBHOOK_URLS}`, 'g')
const PEM_PRIVATE_KEY = /-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY[A-Z0-9 ]{0,20}-----[\s\S]*?(?:-----END [A-Z0-9 ]{0,40}PRIVATE KEY[A-Z0-9 ]{0,20}-----|$)/g
// `scheme://user:password@host`: everything up to the last `@` of the
// authority goes, since an unencoded `@` in a password is common.
const URL_USERINFO = /(?<![a-z0-9+.-])([a-z][a-z0-9+.-]{0,31}:\/\/)[^\s/?#]{1,2048}@/gi
// A token has a digit or a sign, a capital past its first letter, or is
// long: `Bearer of good news` and `Bearer Tokens` are prose. Case matters
// in the token, so the scheme's any-case is spelled out.
const BEARER = /\b([Bb][Ee][Aa][Rr][Ee][Rr])\s+(?=[A-Za-z]{0,4096}[0-9\-._~+/]|[A-Za-z]{16}|[A-Za-z][a-z]{0,4096}[A-Z])[A-Za-z0-9\-._~+/]{1,4096}=*/g
// `password=x`, `"token": "x"`, `?api_key=x&`, `--db-password x`,
// `STRIPE_KEY=x`. The key is a whole run of `[\w.-]` holding a secret word
// or ending with a generic one (decided by isSecretPath); a run inside a URL
// (`https://auth.example.com:443`) is no key. An opening bracket is not a
// value: the pairs inside it are masked one by one.
const KEY_VALUE = new RegExp(
  String.raw`(["']?)(?<![\w./@-])` +
  String.raw`(?=[\w.-]{0,64}?(?:password|passwd|pwd|secret|token|key|credential|cookie|session|(?<![a-z])auth|(?<![a-z])pass(?:phrase)?(?![a-z])|sig(?:nature)?(?![a-z])|(?<![a-z])(?:id|sid|code|pin|salt|hash)(?![a-z])))` +
  String.raw`([\w.-]{1,128})(?![\w.-])\1` +
  // `=` or `:`; bare spaces only after a `-flag`, and not before another flag.
  String.raw`(\s*[=:]\s*|(?<=(?:^|\s)-[\w.-]{0,127})\s+(?!-))` +
  String.raw`("[^"\n]*"|'[^'\n]*'|(?:(?:bearer|basic|token|digest)\s+)?[^\s&;,"'{}[\]()<>]+)`,
  'gi')
// Command lines whose password follows a short flag: `mysql -pSECRET`,
// `sshpass -p SECRET`, `redis-cli -a SECRET`, `curl -u user:SECRET`.
const MYSQL = /(?:^|[\s/])(?:mysql\w*|mariadb[\w-]*)\s/i
const MYSQL_P = /(\s-p)(?![\s-])\S+/g
const SHORT_FLAG_PASSWORD = /((?:^|[\s/])(?:sshpass\s+-p|(?:redis-cli|docker\s+login)\b[^\n]{0,1024}?\s-[ap](?=\s))\s*)[^\s-]\S*/g
const CURL_USER = /((?:^|\s)(?:-u|--user|-U|--proxy-user)\s*['"]?[^\s:'"]{1,256}:)[^\s'"]+/g

function maskKeyValues (s: string, extra: SecretKeys, depth = 0): string {
  return s.replace(KEY_VALUE, (m: string, q: string, key: string, sep: string, value: string) => {
    const name = key.replace(/^-+/, '')
    if (!isSecretPath([], name, extra)) {
      // Not a secret key: what follows may still hold a pair (`note: password=x`).
      return depth < 2 ? `${q}${key}${q}${sep}${maskKeyValues(value, extra, depth + 1)}` : m
    }
    const quote = value[0] === '"' || value[0] === "'" ? value[0] : ''
    return `${q}${key}${q}${sep}${quote}${MASK}${quote}`
  })
}

/** Masks secrets inside free text: token shapes, PEM private keys, URL credentials, bearer tokens, secret `key=value` pairs and flags, mysql's `-p…`. */
export function maskText (s: string, extra: SecretKeys = settings.secretKeys): string {
  try {
    // Every pattern needs a space, `=` or `:`, or 15 characters (the
    // shortest token shape): most arguments and keys are spared the work,
    // and set-up the compiling of the patterns.
    if (s.length < 15 && !/[\s=:]/.test(s)) return s
    let out = s
      .replace(PEM_PRIVATE_KEY, MASK)
      .replace(TOKEN, MASK)
      .replace(URL_USERINFO, `$1${MASK}@`)
      .replace(BEARER, `$1 ${MASK}`)
    out = maskKeyValues(out, extra)
    if (MYSQL.test(out)) out = out.replace(MYSQL_P, `$1${MASK}`)
    return out.replace(SHORT_FLAG_PASSWORD, `$1${MASK}`).replace(CURL_USER, `$1${MASK}`)
  } catch {
    return MASK
  }
}

// ---------------------------------------------------------------- command lines

const FLAG = /^--?[\w.-]+$/

function basename (p: string): string {
  return p.slice(p.lastIndexOf('/') + 1)
}

/**
 * Command-line arguments, masked: the value after a secret flag
 * (`--password x`), `--token=x`, mysql's `-px`, sshpass' `-p x`,
 * redis-cli's `-a x`, docker login's `-p x`, curl's `-u user:x`, and
 * secrets in any argument. For argv, execArgv, child processes and lists of
 * strings in the configuration.
 */
export function maskArgs (args: readonly string[], extra: SecretKeys = settings.secretKeys): string[] {
  const program = typeof args[0] === 'string' ? basename(args[0]) : ''
  const mysql = /^(?:mysql\w*|mariadb[\w-]*)$/i.test(program)
  const shortPassword = program === 'sshpass' ? '-p' : program === 'redis-cli' ? '-a' : program === 'docker' && args[1] === 'login' ? '-p' : null
  const curl = program === 'curl'
  return args.map((arg, i) => {
    try {
      if (typeof arg !== 'string') return String(arg)
      const previous = args[i - 1]
      if (typeof previous === 'string' && FLAG.test(previous) && !arg.startsWith('-')) {
        if (previous === shortPassword || isSecretPath([], previous.replace(/^-+/, ''), extra)) return MASK
      }
      if (curl && /^(?:-u|--user|-U|--proxy-user)$/.test(previous ?? '') && arg.includes(':')) return `${arg.slice(0, arg.indexOf(':'))}:${MASK}`
      const flag = /^(--?[\w.-]+)=/.exec(arg)
      if (flag && isSecretPath([], flag[1].replace(/^-+/, ''), extra)) return `${flag[1]}=${MASK}`
      if (mysql && /^-p./.test(arg)) return `-p${MASK}`
      return maskText(arg, extra)
    } catch {
      return MASK
    }
  })
}

// ---------------------------------------------------------------- plain data

const MAX_JSON_DEPTH = 100

/**
 * Plain JSON data (a user section's content, as parsed back): values at
 * secret paths become `***`, and with text set, strings are masked as free
 * text. Keys are kept. Returns a new value.
 */
export function redactJson (value: unknown, text: boolean, extra: SecretKeys = settings.secretKeys): unknown {
  const walk = (v: unknown, groups: string[], depth: number): unknown => {
    if (typeof v === 'string') return text ? maskText(v, extra) : v
    if (v === null || typeof v !== 'object' || depth > MAX_JSON_DEPTH) return v
    if (Array.isArray(v)) return v.map((x) => walk(x, groups, depth + 1))
    const obj = v as Record<string, unknown>
    const out: Record<string, unknown> = {}
    for (const key of Object.keys(obj)) {
      const secret = isSecretPath(groups, key, extra) || namedSecret((k) => Object.hasOwn(obj, k) ? obj[k] : undefined, key, extra)
      // defineProperty: a `__proto__` key stays a key.
      Object.defineProperty(out, key, { value: secret ? MASK : walk(obj[key], [...groups, key], depth + 1), enumerable: true, writable: true, configurable: true })
    }
    return out
  }
  try {
    return walk(value, [], 0)
  } catch {
    return MASK
  }
}
