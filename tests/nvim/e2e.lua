-- Headless Neovim end to end: loads the README's configuration (torchbolt.lua beside this file), then
-- drives the real server the way a user would and writes what it saw to $TB_OUT as JSON for the pytest
-- side (test_neovim.py) to assert on. Run: nvim --headless -u NONE -i NONE -n -c "luafile e2e.lua"
local out_path = assert(os.getenv('TB_OUT'), 'TB_OUT: where to write the results')
local root = assert(os.getenv('TB_ROOT'), 'TB_ROOT: the workspace folder')
local python = assert(os.getenv('TB_PYTHON'), 'TB_PYTHON: the interpreter that has torchbolt_lsp')
local here = debug.getinfo(1, 'S').source:sub(2):match('(.*/)')
local results = { prompts = {}, notifications = {}, progress = {} }

local function wait(what, ms, cond)
  if not vim.wait(ms, cond, 20) then
    error('timed out waiting for ' .. what, 2)
  end
end

local function titles(bufnr)
  local out = {}
  for _, lens in ipairs(vim.lsp.codelens.get(bufnr)) do
    if lens.command and lens.command.command ~= '' then
      table.insert(out, lens.command.title)
    end
  end
  return out
end

local function has(list, value)
  return vim.tbl_contains(list, value)
end

local function main()
  vim.o.expandtab, vim.o.shiftwidth, vim.o.tabstop = true, 4, 4
  vim.o.virtualedit = 'onemore' -- the cursor may sit after the line's end, as in insert mode
  -- The user answers the trust prompt (window/showMessageRequest goes through vim.ui.select).
  vim.ui.select = function(items, opts, on_choice)
    local names = vim.tbl_map(function(item) return item.title end, items)
    table.insert(results.prompts, { prompt = opts.prompt, actions = names })
    for _, item in ipairs(items) do
      if item.title == 'Trust this folder' then
        return on_choice(item)
      end
    end
    on_choice(nil)
  end
  -- window/showMessage: recorded on its way to Neovim's own handler (which echoes it)
  local show = vim.lsp.handlers['window/showMessage']
  vim.lsp.handlers['window/showMessage'] = function(err, params, ctx, config)
    table.insert(results.notifications, { message = params.message, level = params.type })
    return show(err, params, ctx, config)
  end
  vim.api.nvim_create_autocmd('LspProgress', {
    callback = function(ev)
      local v = ev.data.params.value
      table.insert(results.progress, { kind = v.kind, title = v.title, message = v.message, percentage = v.percentage })
    end,
  })

  dofile(here .. 'torchbolt.lua')
  vim.lsp.config('torchbolt', { cmd = { python, '-m', 'torchbolt_lsp' } }) -- the test's interpreter

  vim.cmd('edit ' .. vim.fn.fnameescape(root .. '/model.py'))
  vim.bo.filetype = 'python' -- -u NONE: no filetype detection; this starts the enabled config
  local bufnr = vim.api.nvim_get_current_buf()
  local client
  wait('the server to attach', 30000, function()
    client = vim.lsp.get_clients({ bufnr = bufnr, name = 'torchbolt' })[1]
    return client ~= nil and client.initialized == true
  end)
  local original = vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)

  -- 1. hook completion, expanded by Neovim's own snippet engine: the body is indented under the def
  local class_end = #original
  vim.api.nvim_buf_set_lines(bufnr, class_end, class_end, false, { '    def ' })
  vim.api.nvim_win_set_cursor(0, { class_end + 1, 8 })
  local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
  local reply = assert(client:request_sync('textDocument/completion', params, 20000, bufnr), 'no completion reply')
  assert(not reply.err, vim.inspect(reply.err))
  local items = reply.result.items or reply.result
  local item
  for _, it in ipairs(items) do
    if it.label == 'configure_optimizers' then item = it end
  end
  assert(item, 'configure_optimizers was not offered')
  results.completion_format = item.insertTextFormat
  results.completion_text = item.textEdit.newText
  local edit = item.textEdit
  local row, col = edit.range.start.line, edit.range.start.character
  vim.api.nvim_buf_set_text(bufnr, row, col, edit.range['end'].line, edit.range['end'].character, { '' })
  vim.api.nvim_win_set_cursor(0, { row + 1, col })
  if item.insertTextFormat == 2 then
    vim.snippet.expand(edit.newText)
    vim.snippet.stop()
  else
    vim.api.nvim_buf_set_text(bufnr, row, col, row, col, vim.split(edit.newText, '\n'))
  end
  vim.cmd('stopinsert')
  results.completion_lines = vim.api.nvim_buf_get_lines(bufnr, class_end, class_end + 4, false)
  vim.api.nvim_buf_set_lines(bufnr, 0, -1, false, original)

  -- 2. a diagnostic (pulled by Neovim 0.11) and its quick fix
  local diag
  wait('the TB201 diagnostic', 30000, function()
    for _, d in ipairs(vim.diagnostic.get(bufnr)) do
      if d.code == 'TB201' then diag = d end
    end
    return diag ~= nil
  end)
  results.diagnostic = { code = diag.code, line = diag.lnum, message = diag.message }
  local lsp_diag = diag.user_data and diag.user_data.lsp
  local actions = assert(client:request_sync('textDocument/codeAction', {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    range = lsp_diag.range,
    context = { diagnostics = { lsp_diag }, only = { 'quickfix' } },
  }, 20000, bufnr)).result or {}
  local fix
  for _, a in ipairs(actions) do
    if a.edit and not fix then fix = a end
  end
  assert(fix, 'no quick fix with an edit: ' .. vim.inspect(actions))
  results.fix_title = fix.title
  vim.lsp.util.apply_workspace_edit(fix.edit, client.offset_encoding)
  results.fixed_line = vim.api.nvim_buf_get_lines(bufnr, diag.lnum, diag.lnum + 1, false)[1]
  vim.cmd('silent write')

  -- 3. the Fit lens, answered through the trust prompt; progress; Stop while it runs
  wait('the code lenses', 30000, function() return #titles(bufnr) > 0 end)
  results.lenses = titles(bufnr)
  local fit
  for _, lens in ipairs(vim.lsp.codelens.get(bufnr)) do
    if lens.command and lens.command.title == '▶ Fit' then fit = lens end
  end
  assert(fit, 'no Fit lens: ' .. vim.inspect(results.lenses))
  local run
  client:exec_cmd(fit.command, { bufnr = bufnr }, function(err, result)
    run = { err = err, result = result }
  end)
  wait('the fit command to answer', 60000, function() return run ~= nil end)
  assert(not run.err and run.result and run.result.runId, vim.inspect(run))
  results.run_id = run.result.runId
  wait('a Stop lens while the run is active', 30000, function()
    return has(titles(bufnr), '■ Stop') or vim.iter(results.progress):any(function(p) return p.kind == 'end' end)
  end)
  results.lenses_running = titles(bufnr)
  wait('the end of the run ($/progress end)', 120000, function()
    return vim.iter(results.progress):any(function(p) return p.kind == 'end' end)
  end)
  wait('the lenses without Stop', 30000, function() return not has(titles(bufnr), '■ Stop') end)
  results.lenses_after = titles(bufnr)

  -- 4. inlay hints with the run's values (the server asks Neovim to re-pull them)
  local labels = {}
  wait('a val_loss inlay hint', 30000, function()
    labels = {}
    for _, h in ipairs(vim.lsp.inlay_hint.get({ bufnr = bufnr })) do
      local label = h.inlay_hint.label
      if type(label) == 'table' then
        label = table.concat(vim.tbl_map(function(p) return p.value end, label))
      end
      table.insert(labels, label)
    end
    -- the values at the end of the run (0.5 / epochs): hints re-pulled on the server's refresh requests
    return vim.iter(labels):any(function(l) return vim.startswith(l, 'val_loss 0.25 ') end)
  end)
  results.hints = labels
  wait('the end-of-run message', 10000, function()
    return vim.iter(results.notifications):any(function(n) return n.message:find('Fit LitModel: done', 1, true) end)
  end)
  results.ok = true
end

local ok, err = xpcall(main, debug.traceback)
if not ok then
  results.ok = false
  results.error = err
end
vim.fn.writefile({ vim.json.encode(results) }, out_path)
vim.cmd('qall!')
