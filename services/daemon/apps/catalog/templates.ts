// The offline catalog's templates, embedded as text by esbuild's '.yaml' text loader
// (image/bundle.ts). Only the bundle can import .yaml files, so only the composition root imports
// this module and hands CATALOG_TEMPLATES to createCatalog; tests bundle it the same way. Images
// are pinned to a release tag; the categories group the portal's catalog.
import type { CatalogTemplate } from './catalog.js';
import actual from './actual.yaml';
import audiobookshelf from './audiobookshelf.yaml';
import dashboard from './dashboard.yaml';
import dozzle from './dozzle.yaml';
import freshrss from './freshrss.yaml';
import gitea from './gitea.yaml';
import homeAssistant from './home-assistant.yaml';
import homepage from './homepage.yaml';
import immich from './immich.yaml';
import jellyfin from './jellyfin.yaml';
import linkding from './linkding.yaml';
import mealie from './mealie.yaml';
import miniflux from './miniflux.yaml';
import navidrome from './navidrome.yaml';
import nextcloud from './nextcloud.yaml';
import notes from './notes.yaml';
import paperless from './paperless.yaml';
import pihole from './pihole.yaml';
import staticSite from './static-site.yaml';
import stirlingPdf from './stirling-pdf.yaml';
import syncthing from './syncthing.yaml';
import uptimeKuma from './uptime-kuma.yaml';
import vaultwarden from './vaultwarden.yaml';
import whoami from './whoami.yaml';

export const CATALOG_TEMPLATES: readonly CatalogTemplate[] = [
  { file: 'static-site.yaml', description: 'A static web site served by nginx', category: 'Web publishing', text: staticSite },
  { file: 'notes.yaml', description: 'Memos: private notes', category: 'Productivity', text: notes },
  { file: 'dashboard.yaml', description: 'Homer: a start page for your apps', category: 'Productivity', text: dashboard },
  { file: 'whoami.yaml', description: 'whoami: a public echo endpoint for testing remote access', category: 'Network tools', text: whoami },
  { file: 'nextcloud.yaml', description: 'Nextcloud: files, calendar and contacts (with MariaDB and Redis)', category: 'Files & photos', text: nextcloud },
  { file: 'immich.yaml', description: 'Immich: photo and video backup with face and object search (with Postgres and Redis)', category: 'Files & photos', text: immich },
  { file: 'syncthing.yaml', description: 'Syncthing: keep folders in step between your devices', category: 'Files & photos', text: syncthing },
  { file: 'jellyfin.yaml', description: 'Jellyfin: stream your films, series and music', category: 'Media', text: jellyfin },
  { file: 'navidrome.yaml', description: 'Navidrome: your music collection as a streaming service', category: 'Media', text: navidrome },
  { file: 'audiobookshelf.yaml', description: 'Audiobookshelf: audiobooks and podcasts', category: 'Media', text: audiobookshelf },
  { file: 'vaultwarden.yaml', description: 'Vaultwarden: a password manager for the Bitwarden apps', category: 'Security', text: vaultwarden },
  { file: 'paperless.yaml', description: 'Paperless-ngx: scan, index and search your documents (with Postgres and Redis)', category: 'Documents', text: paperless },
  { file: 'stirling-pdf.yaml', description: 'Stirling-PDF: merge, split, convert and sign PDF files', category: 'Documents', text: stirlingPdf },
  { file: 'home-assistant.yaml', description: 'Home Assistant: control your home\'s lights, sensors and appliances', category: 'Home automation', text: homeAssistant },
  { file: 'gitea.yaml', description: 'Gitea: your own Git hosting with issues and pull requests (with Postgres)', category: 'Development', text: gitea },
  { file: 'uptime-kuma.yaml', description: 'Uptime Kuma: know when a site or service goes down', category: 'Monitoring', text: uptimeKuma },
  { file: 'dozzle.yaml', description: 'Dozzle: live logs of every container on the device', category: 'Monitoring', text: dozzle },
  { file: 'pihole.yaml', description: 'Pi-hole: block ads and trackers for your whole network', category: 'Network tools', text: pihole },
  { file: 'freshrss.yaml', description: 'FreshRSS: a feed reader for news sites and blogs', category: 'News & reading', text: freshrss },
  { file: 'miniflux.yaml', description: 'Miniflux: a minimalist feed reader (with Postgres)', category: 'News & reading', text: miniflux },
  { file: 'linkding.yaml', description: 'linkding: a bookmark manager', category: 'Productivity', text: linkding },
  { file: 'mealie.yaml', description: 'Mealie: recipes and meal plans', category: 'Productivity', text: mealie },
  { file: 'homepage.yaml', description: 'Homepage: a start page for your services, with status widgets', category: 'Productivity', text: homepage },
  { file: 'actual.yaml', description: 'Actual Budget: envelope budgeting, kept on your device', category: 'Finance', text: actual },
];
