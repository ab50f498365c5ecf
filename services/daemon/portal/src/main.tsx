// The portal's entry: styles, then the app into #app.
import { render } from 'preact';
import { App } from './app.js';
import './styles.css';

const root = document.getElementById('app')!;
root.textContent = ''; // the "Loading…" line the shell shows before the script runs
render(<App />, root);
