// The README's Node.js example for issuing a learner token (HS256 JWT), run by test_token.py.
// Usage: node issue-token.mjs <secret> <sub> <audience> <email>
import { createHmac } from "node:crypto";

function issueLearnerToken(secret, { sub, audience, email, name, ttlSeconds = 4 * 3600 }) {
  const b64url = (value) => Buffer.from(value).toString("base64url");
  const iat = Math.floor(Date.now() / 1000);
  const claims = { sub, aud: audience, iat, exp: iat + ttlSeconds };
  if (email) claims.email = email;
  if (name) claims.name = name;
  const input = `${b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }))}.${b64url(JSON.stringify(claims))}`;
  const signature = createHmac("sha256", secret).update(input).digest("base64url");
  return `${input}.${signature}`;
}

const [secret, sub, audience, email] = process.argv.slice(2);
process.stdout.write(issueLearnerToken(secret, { sub, audience, email }));
