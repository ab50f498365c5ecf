// A signed-in caller of the daemon's API, as the portal is: it keeps the session cookie and the
// CSRF token that sign-in (or setup) hands out, and sends both on every call.
export class ApiSession {
  cookie = '';
  csrf = '';

  /** headers: sent on every call, e.g. the Origin a browser would send (passkeys need it). */
  constructor(
    readonly base: string,
    readonly headers: Record<string, string> = {},
  ) {}

  async call(method: string, route: string, body?: unknown): Promise<{ status: number; body: any; headers: Headers }> {
    const res = await fetch(this.base + route, {
      method,
      headers: { ...this.headers, cookie: this.cookie, 'x-csrf-token': this.csrf, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    const json = res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text;
    if (res.headers.get('set-cookie')) this.cookie = res.headers.get('set-cookie')!.split(';')[0]!;
    if (json?.csrfToken) this.csrf = json.csrfToken;
    return { status: res.status, body: json, headers: res.headers };
  }
}
