// The offline catalog (GET /api/v1/catalog): search by words, narrow by category (each template
// carries one, apps/catalog/templates.ts). Install goes through the preview on the Install screen.
import { useState } from 'preact/hooks';
import { api } from '../../api/client.js';
import { useResource } from '../../api/use-resource.js';
import { LinkButton } from '../../ui/Button.js';
import { Field, Select } from '../../ui/Field.js';
import { Loaded } from '../../ui/Loading.js';
import { Page } from '../../ui/Page.js';
import type { CatalogItem } from './model.js';

const ALL = '';

export function matches(item: CatalogItem, query: string, category: string): boolean {
  if (category !== ALL && item.category !== category) return false;
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  const text = `${item.name} ${item.description} ${item.category} ${item.image}`.toLowerCase();
  return words.every((word) => text.includes(word));
}

export default function Catalog() {
  const catalog = useResource((signal) => api.get<{ apps: CatalogItem[] }>('/api/v1/catalog', { signal }).then((r) => r.apps));
  const [query, setQuery] = useState('');
  const [category, setCategory] = useState(ALL);
  return (
    <Page title="App catalog" intro="Apps that come with the device. Installing one first shows what it will be allowed to do." actions={<LinkButton href="/apps/install">Install from a file</LinkButton>}>
      <Loaded resource={catalog} what="the catalog">
        {(items) => {
          const categories = [...new Set(items.map((item) => item.category))].sort();
          const found = items.filter((item) => matches(item, query, category));
          return (
            <>
              <div class="catalog-filters" role="search">
                <Field label="Search the catalog" type="search" value={query} onInput={(e) => setQuery(e.currentTarget.value)} autocomplete="off" />
                <Select
                  label="Category"
                  value={category}
                  onChange={(e) => setCategory(e.currentTarget.value)}
                  options={[{ value: ALL, label: 'All categories' }, ...categories.map((c) => ({ value: c, label: c }))]}
                />
              </div>
              <p class="muted" role="status">
                {found.length === items.length ? `${items.length} apps` : `${found.length} of ${items.length} apps match`}
              </p>
              {found.length === 0 ? (
                <p>No app matches. Try fewer words or another category.</p>
              ) : (
                <ul class="grid catalog" aria-label="Catalog apps">
                  {found.map((item) => (
                    <li key={item.name} class="card catalog-item" data-app={item.name}>
                      <h2>{item.name}</h2>
                      <p>{item.description}</p>
                      <p class="muted">
                        <span class="category">{item.category}</span> · <span class="mono">{item.image}</span>
                      </p>
                      <LinkButton variant="primary" href={`/apps/install?catalog=${encodeURIComponent(item.name)}`}>
                        Install {item.name}
                      </LinkButton>
                    </li>
                  ))}
                </ul>
              )}
            </>
          );
        }}
      </Loaded>
    </Page>
  );
}
