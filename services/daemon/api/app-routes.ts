// The apps API: install (from a spec, a compose stack, an Umbrel app folder or the catalog), life-cycle actions, history,
// logs, stats and service discovery. Long work answers 202 with a job; its progress comes on the
// events stream and at /api/v1/jobs/{id}.
import type http from 'node:http';
import { BadRequestError, NotFoundError } from '../../common/errors.js';
import type { Router } from '../../common/http.js';
import type { AppManager } from '../apps/manager.js';
import type { Catalog } from '../apps/catalog/catalog.js';
import type { ImageSpaceCheck } from '../apps/image-space.js';
import { assertHostLabelsFree, hostLabel } from '../apps/routes-from-apps.js';
import type { ServiceEntry } from '../apps/views.js';
import { checkDependencies } from '../apps/dependencies.js';
import { importCompose, importUmbrelApp, type AppAbout, type ComposeImportOptions } from '../apps/spec/compose.js';
import type { AppSecretStore } from '../apps/spec/import/secrets.js';
import { checkGrants, neededPermissions, type GrantCheck, type PreviousGrants } from '../apps/spec/permissions.js';
import { previewInstall } from '../apps/spec/preview.js';
import { assertLimitsKept } from '../apps/spec/storage-limits.js';
import { mainService, type AppSpec } from '../apps/spec/types.js';
import { parseAppSpec } from '../apps/spec/validate.js';
import type { AuditLog } from '../auth/audit.js';
import { clientAddress } from './request.js';
import type { ApiSchema } from './schema.js';

export interface AppRoutesDeps {
  schema: ApiSchema;
  /** The running app manager (throws 423/503 while apps are unavailable). */
  apps: () => AppManager;
  catalog: Catalog;
  audit: AuditLog;
  /** Checks the session (and the CSRF token on state-changing requests). */
  requireSession: (req: http.IncomingMessage) => void;
  /** Listeners answer at <listener>-<app>.<deviceName>.local (named in the install preview). */
  deviceName?: () => string;
  /** Generated per-app secrets of imported stacks (APP_PASSWORD...); without it each import makes new ones. */
  secrets?: AppSecretStore;
  /** Room for the images to pull, checked before an install or update is accepted (507 when they do not fit). */
  imageSpace?: Pick<ImageSpaceCheck, 'assertRoomFor'>;
  /** On a full state disk, frees the disk reserve (system/disk-space.ts) so an uninstall can still be recorded. */
  beforeFreeingSpace?: (why: string) => Promise<unknown>;
}

const JSON_TYPE = { 'content-type': 'application/json' };
/** The list's JSON, made once per list: the manager gives the same array while nothing changed. */
const listBodies = new WeakMap<object, Buffer>();
function listBody(list: readonly object[]): Buffer {
  let body = listBodies.get(list);
  if (!body) listBodies.set(list, (body = Buffer.from(JSON.stringify({ apps: list }))));
  return body;
}

/** An app.yaml may be 64 KiB; JSON escaping can double it. */
const SOURCE_LIMIT_BYTES = 160 * 1024;

type InstallBody = {
  spec?: string;
  compose?: string;
  umbrel?: { manifest: string; compose: string };
  service?: string;
  name?: string;
  env?: string;
  env_files?: Record<string, string>;
  variables?: Record<string, string>;
  catalog?: string;
  grants?: string[];
  confirm?: string;
};

type FromBody = { spec: AppSpec; warnings: string[]; secrets?: Record<string, string>; about?: AppAbout };

export function addAppRoutes(router: Router, deps: AppRoutesDeps): Router {
  const { schema, apps, catalog, audit, requireSession } = deps;
  const fromBody = (body: InstallBody) => specFromInstallBody(body, catalog, deps);
  /**
   * Secrets an import made are kept before the install or update uses them (the database is
   * initialised with them), and by the preview, so that the password it shows is the one installed.
   */
  const keepSecrets = async ({ spec, secrets }: FromBody) => {
    if (secrets && deps.secrets) await deps.secrets.keep(spec.name, secrets);
  };
  const signedIn =
    <P extends unknown[], R>(handler: (req: http.IncomingMessage, ...rest: P) => R) =>
    (req: http.IncomingMessage, ...rest: P): R => {
      requireSession(req);
      return handler(req, ...rest);
    };
  const accepted = (job: unknown) => ({ status: 202, body: { job } });
  /** Each permission the spec needs, granted now (with the app's name typed) or before; else 403 permission_required. */
  const grantsOf = (spec: AppSpec, body: InstallBody, previous?: PreviousGrants): GrantCheck => {
    const grants = checkGrants(spec, body.grants ?? [], previous);
    if (grants.newlyGranted.length && body.confirm !== spec.name) {
      throw new BadRequestError(`confirm: type the app's name (${spec.name}) to grant ${grants.newlyGranted.join(', ')}`);
    }
    return grants;
  };
  const auditGrants = async (req: http.IncomingMessage, app: string, { newlyGranted }: GrantCheck) => {
    if (newlyGranted.length) await audit.record({ event: 'app.grant', outcome: 'ok', client: clientAddress(req), detail: `${app}: ${newlyGranted.join(', ')}` });
  };

  // Each listener's name on the LAN (published over mDNS, mdns/publisher.ts), below the name the
  // device is known by there: the portal shows it with the app's addresses.
  const named = (services: readonly ServiceEntry[]) =>
    services.map((service) => ({ ...service, ...(deps.deviceName && { hostname: `${hostLabel(service.app, service.listener)}.${deps.deviceName()}.local` }) }));

  return router
    .on('GET', '/api/v1/apps', signedIn(async () => ({ body: listBody(await apps().list()), headers: JSON_TYPE })))
    .on('POST', '/api/v1/apps', signedIn(async (req) => {
      const body = await schema.body<InstallBody>(req, 'installApp', SOURCE_LIMIT_BYTES);
      const imported = fromBody(body);
      const { spec, warnings, about } = imported;
      // The host-name and container-name checks run in the install's own store commit (manager.ts).
      const grants = grantsOf(spec, body);
      // Before anything is committed: an image that cannot fit leaves nothing half-installed.
      await deps.imageSpace?.assertRoomFor(spec.services.map((service) => service.image));
      await keepSecrets(imported);
      const job = await apps().install(spec, { granted: grants.granted });
      await audit.record({ event: 'app.install', outcome: 'ok', client: clientAddress(req), detail: spec.name });
      await auditGrants(req, spec.name, grants);
      return { status: 202, body: { job, warnings, ...(about && { about }) } };
    }))
    .on('POST', '/api/v1/apps/preview', signedIn(async (req) => {
      // The checks of install and update, then what would change; nothing is installed or pulled.
      const imported = fromBody(await schema.body<InstallBody>(req, 'previewApp', SOURCE_LIMIT_BYTES));
      const { spec, warnings, about } = imported;
      const installed = await apps().list();
      assertHostLabelsFree(spec, installed);
      checkDependencies({ ...Object.fromEntries(installed.map((app) => [app.name, app.spec as AppSpec])), [spec.name]: spec });
      const current = installed.find((app) => app.name === spec.name);
      if (current) assertLimitsKept(current.spec, spec);
      // Kept already: the password the preview shows (Umbrel's defaultPassword) is the one the install uses.
      await keepSecrets(imported);
      return { body: { ...previewInstall(spec, { installed: current?.spec, granted: current?.granted, warnings, deviceName: deps.deviceName?.() }), ...(about && { about }) } };
    }))
    .on('GET', '/api/v1/apps/:name', signedIn(async (_req, { name }) => {
      const view = await apps().get(name!);
      return { body: { ...view, services: named(view.services) } };
    }))
    .on('PUT', '/api/v1/apps/:name', signedIn(async (req, { name }) => {
      const body = await schema.body<InstallBody>(req, 'updateApp', SOURCE_LIMIT_BYTES);
      const imported = fromBody({ ...body, name: body.name ?? name });
      const { spec, warnings } = imported;
      if (spec.name !== name) throw new BadRequestError(`name: the spec is for ${spec.name}, not ${name}`);
      const current = await apps().get(name!);
      // What was granted before holds for no more than it was granted for; anything new is asked again.
      const grants = grantsOf(spec, body, { spec: current.spec, granted: current.granted ?? [] });
      assertLimitsKept(current.spec, spec);
      await deps.imageSpace?.assertRoomFor(spec.services.map((service) => service.image));
      await keepSecrets(imported);
      const job = await apps().update(name!, spec, { granted: grants.granted });
      await auditGrants(req, spec.name, grants);
      return { status: 202, body: { job, warnings } };
    }))
    .on('DELETE', '/api/v1/apps/:name', signedIn(async (req, { name }) => {
      const { confirm, purge = false } = await schema.body<{ confirm: string; purge?: boolean }>(req, 'uninstallApp');
      // Destructive: the caller types the app's name, as a person confirming in the portal would.
      if (confirm !== name) throw new BadRequestError(`confirm: type the app's name (${name}) to uninstall it`);
      // Removing an app is how a person frees space: on a full disk it must still be recordable.
      await deps.beforeFreeingSpace?.(`to uninstall ${name}`);
      const job = await apps().uninstall(name!, { purge });
      // The secrets opened the data; with the data gone, a new install starts with new ones.
      if (purge) await deps.secrets?.forget(name!);
      await audit.record({ event: purge ? 'app.purge' : 'app.uninstall', outcome: 'ok', client: clientAddress(req), detail: name });
      return accepted(job);
    }))
    .on('POST', '/api/v1/apps/:name/start', signedIn(async (_req, { name }) => accepted(await apps().start(name!))))
    .on('POST', '/api/v1/apps/:name/stop', signedIn(async (_req, { name }) => accepted(await apps().stop(name!))))
    .on('POST', '/api/v1/apps/:name/restart', signedIn(async (_req, { name }) => accepted(await apps().restart(name!))))
    .on('GET', '/api/v1/apps/:name/history', signedIn(async (_req, { name }) => ({ body: { history: apps().history(name!) } })))
    .on('POST', '/api/v1/apps/:name/revert', signedIn(async (req, { name }) => {
      const { revision } = await schema.body<{ revision: number }>(req, 'revertApp');
      const history = apps().history(name!);
      const target = history.find((entry) => entry.revision === revision);
      if (target) assertLimitsKept(history[0]!.spec, target.spec);
      return accepted(await apps().revert(name!, revision));
    }))
    // The terminal itself is a WebSocket (apps/terminal.ts); a plain GET is told so, once the
    // caller is signed in and the app exists (an unknown app is a 404, as on the socket).
    .on('GET', '/api/v1/apps/:name/terminal', signedIn(async (_req, { name }) => {
      await apps().get(name!);
      return { status: 426, headers: { upgrade: 'websocket' }, body: { error: { code: 'upgrade_required', message: 'connect with a WebSocket' } } };
    }))
    // What the installed spec grants, in the preview's words (the App page lists them).
    .on('GET', '/api/v1/apps/:name/permissions', signedIn(async (_req, { name }) => ({
      body: { permissions: previewInstall((await apps().get(name!)).spec, { deviceName: deps.deviceName?.() }).permissions },
    })))
    .on('GET', '/api/v1/apps/:name/services', signedIn(async (_req, { name }) => ({ body: { services: named(apps().services(name!)) } })))
    // ?service= picks one container of a multi-container app; the main one by default.
    .on('GET', '/api/v1/apps/:name/stats', signedIn(async (req, { name }) => ({ body: await apps().stats(name!, serviceParam(req)) })))
    .on('GET', '/api/v1/apps/:name/logs', signedIn(async (req, { name }) => {
      const query = new URL(req.url ?? '/', 'http://x').searchParams;
      const tail = query.has('tail') ? Number(query.get('tail')) : 200;
      if (!Number.isInteger(tail) || tail < 0 || tail > 100_000) throw new BadRequestError('tail: a whole number from 0 to 100000');
      const stream = await apps().logs(name!, { tail, follow: query.get('follow') === 'true', service: serviceParam(req) });
      return { headers: { 'content-type': 'text/plain; charset=utf-8' }, body: stream };
    }))
    .on('GET', '/api/v1/services', signedIn(() => ({ body: { services: named(apps().services()) } })))
    // With the in-memory pull progress of running jobs, as GET /api/v1/jobs/{id} gives it.
    .on('GET', '/api/v1/jobs', signedIn(() => ({ body: { jobs: apps().jobs().map((job) => apps().job(job.id) ?? job) } })))
    .on('GET', '/api/v1/jobs/:id', signedIn((_req, { id }) => {
      const job = apps().job(id!);
      if (!job) throw new NotFoundError(`no job ${id}`);
      return { body: job };
    }))
    .on('GET', '/api/v1/catalog', signedIn(() => ({
      // images: every container's; permissions: the grants installing it asks for (ids), for a badge.
      body: {
        apps: catalog.listCatalog().map(({ name, description, category, spec }) => ({
          name,
          description,
          category,
          image: mainService(spec).image,
          images: spec.services.map((service) => service.image),
          permissions: neededPermissions(spec).map((permission) => permission.id),
        })),
      },
    })));
}

/** The `service` query parameter (which container of the app), when given. */
function serviceParam(req: http.IncomingMessage): string | undefined {
  return new URL(req.url ?? '/', 'http://x').searchParams.get('service') ?? undefined;
}

/** Exactly one of spec (app.yaml text), compose (a whole stack, or + service), umbrel (an app folder's two files) or catalog (a template name). */
function specFromInstallBody(body: InstallBody, catalog: Catalog, deps: AppRoutesDeps): FromBody {
  const sources = (['spec', 'compose', 'umbrel', 'catalog'] as const).filter((key) => body[key] !== undefined);
  if (sources.length !== 1) throw new BadRequestError('give exactly one of spec, compose, umbrel or catalog');
  if (body.spec !== undefined) return { spec: parseAppSpec(body.spec), warnings: [] };
  // A template's ${DB_PASSWORD}-style placeholders get the app's own secrets, kept like an import's.
  if (body.catalog !== undefined) return { ...catalog.instantiate(body.catalog, deps.secrets?.kept(body.catalog)), warnings: [] };
  const options: ComposeImportOptions = {
    ...(body.service !== undefined && { serviceName: body.service }),
    ...(body.name !== undefined && { name: body.name }),
    ...(body.env !== undefined && { env: body.env }),
    ...(body.env_files !== undefined && { envFiles: body.env_files }),
    ...(body.variables !== undefined && { variables: body.variables }),
    ...(deps.secrets && { keptSecrets: (app: string) => deps.secrets!.kept(app) }),
    ...(deps.deviceName && { deviceName: deps.deviceName() }),
    // The device's own zone (TZ of the daemon's environment, or the system's).
    timezone: Intl.DateTimeFormat().resolvedOptions().timeZone,
  };
  return body.umbrel !== undefined ? importUmbrelApp(body.umbrel, options) : importCompose(body.compose!, options);
}
