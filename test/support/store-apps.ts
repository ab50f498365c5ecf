// App-store files for the import tests (API and portal): an Umbrel app folder of two containers,
// the second reached by its Umbrel container name, and a CasaOS file asking for a device and the
// media folder. Both serve the given image (test/support/podman.ts buildHttpdImage).

/** umbrel-app.yml and docker-compose.yml of the app `id` ("Notes"), with the generated APP_PASSWORD. */
export function umbrelNotes(id: string, image: string): { manifest: string; compose: string } {
  const manifest = `manifestVersion: 1
id: ${id}
name: Notes
tagline: Write things down
category: files
version: "1.0"
port: 8090
defaultUsername: umbrel
defaultPassword: $APP_PASSWORD
`;
  const compose = `version: "3.7"
services:
  app_proxy:
    environment:
      APP_HOST: ${id}_web_1
      APP_PORT: 80
  web:
    image: ${image}
    restart: on-failure
    environment:
      PASSWORD: \${APP_PASSWORD}
      BACKEND: http://${id}_backend_1:8080
    volumes:
      - \${APP_DATA_DIR}/data/www:/data
    depends_on: [backend]
  backend:
    image: ${image}
    command: ["httpd", "-f", "-v", "-p", "8080", "-h", "/www"]
`;
  return { manifest, compose };
}

/** A CasaOS file ("Player") whose web port is published as `hostPort` (a number, or a variable such as ${WEB_PORT}). */
export function casaosPlayer(name: string, image: string, hostPort = '8097'): string {
  return `name: ${name}
services:
  player:
    image: ${image}
    network_mode: bridge
    ports:
      - target: 80
        published: "${hostPort}"
        protocol: tcp
    devices: ["/dev/dri:/dev/dri"]
    volumes:
      - type: bind
        source: /DATA/AppData/$AppID/config
        target: /config
      - type: bind
        source: /DATA/Media
        target: /media
x-casaos:
  main: player
  title: { en_us: Player }
  tagline: { en_us: Plays things }
  icon: https://example.com/player.png
  port_map: "${hostPort}"
`;
}
