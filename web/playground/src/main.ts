// The playground page: chats side by side and the server panel, all talking to the gRPC service
// straight from the browser.
import type { CallProblem } from './call-errors.ts';
import { ChatPanel } from './chat-panel.ts';
import { ServerPanel } from './server-panel.ts';
import { createServiceClient, serviceUrl } from './service-client.ts';

/** sessionStorage, so the key is gone when the tab closes and never shared with other tabs. */
const KEY_STORAGE = 'mlx-batch-server.api-key';

const byId = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

function main(): void {
  const keyInput = byId<HTMLInputElement>('api-key');
  keyInput.value = sessionStorage.getItem(KEY_STORAGE) ?? '';
  keyInput.addEventListener('input', () => sessionStorage.setItem(KEY_STORAGE, keyInput.value.trim()));
  const url = serviceUrl();
  const client = createServiceClient(url, () => keyInput.value.trim());

  const banner = byId<HTMLDivElement>('banner');
  const showProblem = (problem: CallProblem | undefined) => {
    banner.hidden = problem === undefined;
    banner.dataset.kind = problem?.kind ?? '';
    banner.textContent = problem?.message ?? '';
  };

  const chats = byId<HTMLDivElement>('chats');
  const panels: ChatPanel[] = [];
  let created = 0;
  const addChat = () => {
    const panel = new ChatPanel(client, url, `Chat ${++created}`, (closed) => {
      panels.splice(panels.indexOf(closed), 1);
      closed.element.remove();
    });
    panels.push(panel);
    chats.append(panel.element);
  };
  addChat();
  addChat();
  byId('add-chat').addEventListener('click', addChat);
  byId('send-all').addEventListener('click', () => {
    for (const panel of panels) void panel.send();
  });

  new ServerPanel(byId('server-panel'), client, url, showProblem).start();
  client.listModels({}).then(
    (res) => {
      const model = res.models.find((m) => m.isDefault) ?? res.models[0];
      if (model) byId('model').textContent = `${model.id} · ${model.architecture} · ${model.contextLength} ctx`;
    },
    () => {}, // the server panel reports why the service cannot be used
  );
}

main();
