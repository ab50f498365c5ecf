// The OpenAPI document is the one description of the API: request bodies are validated against
// its schemas here, and a test holds the router and the document to the same list of routes.
// Each validator is compiled on its first use, not at start: compiling all of them (and checking
// the whole document against JSON Schema's meta-schema, now test/unit/api-contract.test.ts's job)
// cost the daemon ~100 ms of CPU at every start here, several times that under the guest's TCG,
// and kept every compiled function resident though an idle device validates nothing.
import type http from 'node:http';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { BadRequestError } from '../../common/errors.js';
import { readJson } from '../../common/http.js';

export interface Operation {
  method: string;
  path: string;
  operationId: string;
}

export interface OpenApiDocument {
  paths: Record<string, Record<string, { operationId: string; requestBody?: unknown }>>;
}

export class ApiSchema {
  readonly operations: Operation[] = [];
  /** The JSON pointer (under "api#/") of each operation's JSON body schema, and of each components/schemas entry asked for. */
  private readonly pointers = new Map<string, string>();
  private readonly validators = new Map<string, ValidateFunction>();
  private readonly ajv: Ajv;

  constructor(doc: OpenApiDocument) {
    // strict: false, because the document also holds OpenAPI keywords that are not JSON Schema.
    const ajv = (this.ajv = new Ajv({ strict: false, allErrors: true, validateSchema: false }));
    ajv.addSchema(doc as object, 'api');
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(methods)) {
        this.operations.push({ method: method.toUpperCase(), path, operationId: operation.operationId });
        // Only JSON bodies are checked here; a raw upload (a backup file) is its handler's to read.
        if (!(operation.requestBody as { content?: Record<string, unknown> } | undefined)?.content?.['application/json']) continue;
        this.pointers.set(operation.operationId, ['paths', path, method, 'requestBody', 'content', 'application/json', 'schema'].map(escapePointer).join('/'));
      }
    }
  }

  /** The compiled validator of an operation's body or a component schema, compiled on first use. */
  private validator(key: string): ValidateFunction | undefined {
    let validate = this.validators.get(key);
    const pointer = this.pointers.get(key);
    if (!validate && pointer !== undefined) {
      validate = this.ajv.getSchema(`api#/${pointer}`);
      if (!validate) throw new Error(`no schema at ${pointer} in the OpenAPI document`);
      this.validators.set(key, validate);
    }
    return validate;
  }

  /** Compiles every operation's body validator now; the contract test's proof that each one compiles. */
  compileAll(): number {
    for (const operationId of this.pointers.keys()) this.validator(operationId);
    return this.validators.size;
  }

  /** Checks a value that does not come as a JSON body (a header's JSON) against components/schemas/<name>; problems are named under `where`. */
  value<T>(name: string, value: unknown, where: string): T {
    if (!this.pointers.has(`#${name}`)) this.pointers.set(`#${name}`, `components/schemas/${escapePointer(name)}`);
    const validate = this.validator(`#${name}`)!;
    if (!validate(value)) throw new BadRequestError(`invalid ${where}`, (validate.errors ?? []).map((error) => `${where}: ${describe(error).replace(/^body: /, '')}`));
    return value as T;
  }

  /** Reads the JSON body of an operation and checks it; every problem is named in a 400. */
  async body<T>(req: http.IncomingMessage, operationId: string, limitBytes = 64 * 1024): Promise<T> {
    const validate = this.validator(operationId);
    if (!validate) throw new Error(`operation ${operationId} has no request body in the OpenAPI document`);
    const body = await readJson(req, limitBytes);
    if (!validate(body)) throw new BadRequestError('invalid request body', (validate.errors ?? []).map(describe));
    return body as T;
  }
}

function describe(error: ErrorObject): string {
  const where = error.instancePath ? error.instancePath.slice(1).replace(/\//g, '.') : 'body';
  if (error.keyword === 'additionalProperties') return `${where}: unknown field ${(error.params as { additionalProperty: string }).additionalProperty}`;
  if (error.keyword === 'required') return `${where}: missing field ${(error.params as { missingProperty: string }).missingProperty}`;
  return `${where}: ${error.message}`;
}

function escapePointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}
