// Drives Tutti with the official @segment/analytics-node client, unchanged except for its host option.
// usage: node segment_node.mjs WRITE_KEY HOST PREFIX
import { Analytics } from '@segment/analytics-node'

const [writeKey, host, prefix] = process.argv.slice(2)
const analytics = new Analytics({ writeKey, host, maxRetries: 1, flushAt: 3 })
let failed = null
analytics.on('error', (err) => { failed = err })

const anon = `${prefix}-anon`
const user = `${prefix}-user`
analytics.page({ anonymousId: anon, name: 'Pricing', properties: { path: '/pricing' } })
analytics.track({ anonymousId: anon, event: 'Product Viewed', properties: { name: 'Phở bò 牛肉粉' } })
analytics.identify({ userId: user, anonymousId: anon, traits: { email: `${prefix}@Example.vn`, name: 'Trần Văn An' } })
analytics.group({ userId: user, groupId: `${prefix}-acme`, traits: { name: 'Công ty 越南' } })
analytics.alias({ userId: user, previousId: `${prefix}-anon2` })
analytics.track({ userId: user, event: 'Order Completed', properties: { revenue: 120000, currency: 'VND' } })
await analytics.closeAndFlush({ timeout: 30000 })
if (failed) {
  console.error('client reported an error', failed)
  process.exit(1)
}
console.log('ok')
